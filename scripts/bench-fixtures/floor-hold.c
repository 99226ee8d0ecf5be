/* The C floor's idle stand-in, for the memory phase only: printf (the
 * floor) exits at once and so holds no idle connection. Greets "+OK\r\n"
 * as printf does, then reads until EOF or any input (the bench's QUIT)
 * and exits. scripts/bench.mjs compiles it with cc -static -Os into
 * dist/bench/fixtures/, beside the other fixtures. */
#include <errno.h>
#include <unistd.h>

int main(void) {
  char byte;
  while (write(1, "+OK\r\n", 5) == -1 && errno == EINTR) {}
  while (read(0, &byte, 1) == -1 && errno == EINTR) {}
  return 0;
}
