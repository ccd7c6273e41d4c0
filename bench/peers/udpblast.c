/* udpblast: the traffic generator of the peer benchmarks (bench/peers/run.py).
 *
 *   udpblast send  DST PORT SECONDS MAXCOUNT NPORTS   64-byte UDP from NPORTS source ports (sendmmsg)
 *   udpblast recv  PORT SECONDS                        count datagrams (recvmmsg), print the total
 *   udpblast conn  DST PORT SECONDS MAXCOUNT           new TCP connections in a loop (connect, RST)
 *   udpblast accept PORT SECONDS                       accept and close, print the total
 *
 * Every mode stops at SECONDS or MAXCOUNT and prints one JSON line. Built by run.py
 * with `cc -O2`; it only ever talks to the addresses it is given. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kBatch = 64, kPayload = 64, kBasePort = 20000 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

static struct sockaddr_in addr_of(const char* ip, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (ip && inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", ip);
    exit(2);
  }
  return a;
}

static int do_send(const char* dst, int port, double secs, long max, int nports) {
  struct sockaddr_in to = addr_of(dst, port);
  int* fds = calloc(nports, sizeof *fds);
  for (int i = 0; i < nports; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0) die("socket");
    struct sockaddr_in me = addr_of(NULL, kBasePort + i);
    if (bind(fds[i], (struct sockaddr*)&me, sizeof me) < 0) die("bind");
    if (connect(fds[i], (struct sockaddr*)&to, sizeof to) < 0) die("connect");
  }
  static char buf[kBatch][kPayload];
  struct iovec iov[kBatch];
  struct mmsghdr msgs[kBatch];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < kBatch; i++) {
    iov[i] = (struct iovec){buf[i], kPayload};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long sent = 0, errors = 0;
  double t0 = now(), end = t0 + secs, t = t0;
  for (int k = 0; sent < max; k = (k + 1) % nports) {
    if ((sent / kBatch) % 16 == 0 && (t = now()) >= end) break;
    int n = sendmmsg(fds[k], msgs, kBatch, 0);
    if (n < 0) {
      errors++;
      if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) die("sendmmsg");
      continue;
    }
    sent += n;
  }
  t = now();
  printf("{\"sent\": %ld, \"errors\": %ld, \"seconds\": %.6f}\n", sent, errors, t - t0);
  return 0;
}

static int listen_socket(int type, int port) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) die("socket");
  int one = 1, big = 16 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, 33 /* SO_RCVBUFFORCE */, &big, sizeof big);
  struct sockaddr_in me = addr_of(NULL, port);
  if (bind(fd, (struct sockaddr*)&me, sizeof me) < 0) die("bind");
  if (type == SOCK_STREAM && listen(fd, 4096) < 0) die("listen");
  struct timeval tv = {0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static int do_recv(int port, double secs) {
  int fd = listen_socket(SOCK_DGRAM, port);
  static char buf[kBatch][2048];
  struct iovec iov[kBatch];
  struct mmsghdr msgs[kBatch];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < kBatch; i++) {
    iov[i] = (struct iovec){buf[i], sizeof buf[i]};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  printf("ready\n");
  fflush(stdout);
  long got = 0;
  double first = 0, last = 0, end = now() + secs;
  /* Stops at the deadline, or once the sender has gone quiet for 0.3 s. */
  for (double t = now(); t < end && !(got && t - last > 0.3); t = now()) {
    int n = recvmmsg(fd, msgs, kBatch, 0, NULL);
    if (n <= 0) continue;
    last = now();
    if (!got) first = last;
    got += n;
  }
  printf("{\"received\": %ld, \"seconds\": %.6f}\n", got, last - first);
  return 0;
}

static int do_conn(const char* dst, int port, double secs, long max) {
  struct sockaddr_in to = addr_of(dst, port);
  struct linger lg = {1, 0}; /* close with RST: no TIME_WAIT, ports recycle */
  long ok = 0, failed = 0;
  double t0 = now(), end = t0 + secs;
  while (ok + failed < max && now() < end) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr*)&to, sizeof to) == 0) ok++;
    else failed++;
    close(fd);
  }
  printf("{\"connections\": %ld, \"failed\": %ld, \"seconds\": %.6f}\n", ok, failed, now() - t0);
  return 0;
}

static int do_accept(int port, double secs) {
  int fd = listen_socket(SOCK_STREAM, port);
  printf("ready\n");
  fflush(stdout);
  long got = 0;
  double end = now() + secs, last = 0;
  for (double t = now(); t < end && !(got && t - last > 0.3); t = now()) {
    int c = accept(fd, NULL, NULL);
    if (c < 0) continue;
    last = now();
    got++;
    close(c);
  }
  printf("{\"accepted\": %ld}\n", got);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 7 && !strcmp(argv[1], "send"))
    return do_send(argv[2], atoi(argv[3]), atof(argv[4]), atol(argv[5]), atoi(argv[6]));
  if (argc >= 4 && !strcmp(argv[1], "recv")) return do_recv(atoi(argv[2]), atof(argv[3]));
  if (argc >= 6 && !strcmp(argv[1], "conn")) return do_conn(argv[2], atoi(argv[3]), atof(argv[4]), atol(argv[5]));
  if (argc >= 4 && !strcmp(argv[1], "accept")) return do_accept(atoi(argv[2]), atof(argv[3]));
  fprintf(stderr,
          "usage: udpblast send DST PORT SECONDS MAXCOUNT NPORTS | recv PORT SECONDS |\n"
          "       conn DST PORT SECONDS MAXCOUNT | accept PORT SECONDS\n");
  return 2;
}
