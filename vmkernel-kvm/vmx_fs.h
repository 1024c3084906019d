/* Small file helpers shared by vmx's file moves (the serial log's and its
 * own log's move in VMX_FOLDER_MOVE, disk moves). */
#ifndef KVC_VMX_FS_H
#define KVC_VMX_FS_H

#include <stdbool.h>
#include <stdint.h>

/* Copy IN's bytes [*OFF, end of file) to the end of OUT; *OFF follows.
 * 0 or -errno. */
int vmx_copy_tail(int in, int out, uint64_t *off);
/* A and B are the same file or folder (device and inode: a symlink or
 * "a/../a" is caught). */
bool vmx_same_file(const char *a, const char *b);

#endif
