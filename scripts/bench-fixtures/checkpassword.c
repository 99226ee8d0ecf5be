/* Benchmark stand-in for checkpassword: checkpassword prog [args...]
 * Accepts anyone: reads name\0password\0timestamp\0 from fd 3 to EOF,
 * closes fd 3 and execs prog. Exit codes as the checkpassword interface:
 * 2 without prog, 111 if fd 3 cannot be read or prog cannot be run.
 * scripts/bench.mjs compiles it with cc into dist/bench/fixtures/. */
#include <errno.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char buf[1024];
  ssize_t n;
  if (argc < 2) return 2;
  for (;;) {
    n = read(3, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return 111;
    }
  }
  close(3);
  execvp(argv[1], argv + 1);
  return 111;
}
