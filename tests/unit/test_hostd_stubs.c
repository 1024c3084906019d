/* What test_hostd_sim links instead of hostd's host.c (no RPC session). */
#include <string.h>
#include <strings.h>

#include "hostd/hostd.h"

struct hostd_vm *
hostd_vm_find(struct hostd_host *h, const char *uuid)
{
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if (!strcasecmp(vm->uuid, uuid))
            return vm;
    return NULL;
}

void
hostd_vm_changed(struct hostd_host *h, struct hostd_vm *vm, bool removed)
{
    h->generation++;
    if (!removed)
        vm->generation++;
}
