import type { DescriptorStat } from "./types.ts";

/**
 * Whether fd was handed to us by our parent (fd 5 from `tcpserver … 5>log`)
 * rather than opened by the runtime for itself. Node, Bun and Deno all open
 * descriptors of their own before our code runs, filling the lowest free
 * numbers, and Node and Bun mark inherited ones close-on-exec, so the flags
 * cannot tell them apart. What can: the runtimes' own are anonymous inodes
 * (epoll, eventfd) or pipe and socket pairs with both ends in this process.
 * A parent's log descriptor is a file, a pipe or a socket whose other end is
 * elsewhere (or fd 2, as with `5>&2`).
 */
export function isInheritedDescriptor(fd: number, stat: (fd: number) => DescriptorStat | undefined): boolean {
  const own = stat(fd);
  if (own === undefined || own.kind === "other") return false;
  if (own.kind === "file" || own.kind === "chardev") return true;
  // A pipe's two ends share an inode; so do the two fds a dup made. A runtime's
  // self-pipe sits among the low descriptors, next to ours.
  for (let other = 3; other < fd + 32; other++) {
    if (other === fd) continue;
    const sibling = stat(other);
    if (sibling !== undefined && sibling.dev === own.dev && sibling.ino === own.ino) return false;
  }
  return true;
}
