/* Entry points of the test guest.
 *
 *  _start       64-bit entry used by vmx: long mode, paging and a flat GDT
 *               are already set up; RDI = vCPU index, RSI = boot-info GPA.
 *  pvh_start32  32-bit protected-mode entry named by the PVH ELF note
 *               (XEN_ELFNOTE_PHYS32_ENTRY), used by QEMU -kernel: EBX holds
 *               the hvm_start_info address; we enable long mode ourselves.
 *
 * Both end in kmain(cpu, info, from_pvh) on a per-CPU kernel stack. */
#define KSTACK_SHIFT 14
#define EFER_MSR 0xc0000080

    .section .note.Xen, "a"
    .balign 4
    .long 4                 /* namesz */
    .long 8                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    movl %ebx, %esi
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $EFER_MSR, %ecx
    rdmsr
    orl $0x100, %eax                /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax           /* PG | PE */
    movl %eax, %cr0
    lgdt boot_gdt_desc
    ljmp $0x08, $pvh_start64

    .code64
pvh_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    xorl %edi, %edi
    movl %esi, %esi
    movl $1, %edx
    jmp common64

    .globl _start
_start:
    xorl %edx, %edx
common64:
    cli
    cld
    movq %rdi, %rax
    andq $7, %rax
    incq %rax
    shlq $KSTACK_SHIFT, %rax
    addq $kstacks, %rax
    movq %rax, %rsp
    xorl %ebp, %ebp
    call kmain
1:  cli
    hlt
    jmp 1b

/* Enter CPL3: enter_user(rip, rsp, arg) */
    .globl enter_user
enter_user:
    movq %rdx, %rax
    pushq $0x23                     /* user SS */
    pushq %rsi                      /* user RSP */
    pushq $0x202                    /* RFLAGS: IF */
    pushq $0x1b                     /* user CS */
    pushq %rdi                      /* RIP */
    movq %rax, %rdi
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %ebp, %ebp
    xorl %r8d, %r8d
    xorl %r9d, %r9d
    xorl %r10d, %r10d
    xorl %r11d, %r11d
    iretq

/* Trap stubs: push a dummy error code where the CPU pushes none. */
.macro TRAP vec, err
trap_\vec:
    .if \err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp trap_common
.endm

    TRAP 0,0
    TRAP 1,0
    TRAP 2,0
    TRAP 3,0
    TRAP 4,0
    TRAP 5,0
    TRAP 6,0
    TRAP 7,0
    TRAP 8,1
    TRAP 9,0
    TRAP 10,1
    TRAP 11,1
    TRAP 12,1
    TRAP 13,1
    TRAP 14,1
    TRAP 15,0
    TRAP 16,0
    TRAP 17,1
    TRAP 18,0
    TRAP 19,0
    TRAP 20,0
    TRAP 21,1
    TRAP 32,0
    TRAP 33,0
    TRAP 255,0

trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    call trap
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    .section .rodata
    .balign 8
    .globl trap_vectors
trap_vectors:           /* pairs: vector, stub */
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,32,33,255
    .quad \v, trap_\v
    .endr
    .quad -1, 0

    .section .data
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdt_end:
boot_gdt_desc:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

/* Identity map of the first 4 GiB with 2 MiB pages, user-accessible, for
 * the PVH path (vmx writes an equivalent set at KVC_GPA_PML4). */
    .balign 4096
boot_pml4:
    .quad boot_pdpt + 0x7
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 0x7
    .quad boot_pd + 0x1007
    .quad boot_pd + 0x2007
    .quad boot_pd + 0x3007
    .fill 508, 8, 0
boot_pd:
    .set i, 0
    .rept 2048
    .quad (i << 21) | 0x87
    .set i, i + 1
    .endr

    .section .bss
    .balign 4096
    .globl kstacks
kstacks:
    .fill (8 << KSTACK_SHIFT), 1, 0
