/* Benchmark stand-in for qmail-pop3d: an empty mailbox. Greets "+OK ",
 * answers STAT with "+OK 0 0", QUIT with "+OK " and exits, anything else
 * with "+OK ". Waits for input as long as the client keeps the connection
 * open (the memory measurement relies on that); exits quietly on EOF.
 * scripts/bench.mjs compiles it with cc into dist/bench/fixtures/. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void put(const char *s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = write(1, s, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(111);
    }
    s += n;
    len -= (size_t)n;
  }
}

int main(void) {
  char line[1100];
  size_t used = 0;
  put("+OK \r\n");
  for (;;) {
    char *lf = memchr(line, '\n', used);
    if (lf == NULL) {
      ssize_t n;
      if (used == sizeof line) used = 0; /* overlong line: drop it */
      n = read(0, line + used, sizeof line - used);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      used += (size_t)n;
      continue;
    }
    if (lf - line >= 4 && strncasecmp(line, "stat", 4) == 0) put("+OK 0 0\r\n");
    else if (lf - line >= 4 && strncasecmp(line, "quit", 4) == 0) {
      put("+OK \r\n");
      return 0;
    } else put("+OK \r\n");
    used -= (size_t)(lf + 1 - line);
    memmove(line, lf + 1, used);
  }
}
