/*
 * websock_deadlines.c - every C API call returns by its deadline, against the hostile
 * servers of examples/c/hostile_server.py. The deadlines are checked with generous slack:
 * these are bounds, not speed claims.
 *
 *   websock_deadlines open HOST PORT SECURED TIME_OUT
 *       a server that accepts TCP and never answers: websock_open must fail within
 *       TIME_OUT seconds (for the whole handshake: TCP, TLS when SECURED, HTTP upgrade).
 *   websock_deadlines flood HOST PORT
 *       a server that floods pings (and may never read the pongs): three websock_recv with a
 *       1 s timeout each return within it and never hand out a ping; websock_close returns
 *       within WEBSOCK_CLOSE_TIMEOUT.
 *   websock_deadlines flood-callback HOST PORT
 *       the same server in callback mode: websock_close (which stops the handler's thread)
 *       returns within WEBSOCK_CLOSE_TIMEOUT.
 *   websock_deadlines send HOST PORT WRITE_TIMEOUT
 *       a server that never reads: sending 16 MiB fails within the write timeout, which is
 *       WRITE_TIMEOUT seconds set with websock_set_write_timeout (time_out being 10), or
 *       with WRITE_TIMEOUT 0 the default, time_out (2 here).
 *
 * SLACK (environment, seconds, default 1) is added to every bound. Exits non-zero on the
 * first failure. Built and run by examples/c/run.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "websock.h"

static double slack = 1.0;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "[APP] FAILED at line %d: ", __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " (last error: %s)\n", websock_last_error());   \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static void config(struct websock_config_t *cfg, char *host, char *port, int secured,
                   int time_out)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->hostname = host;
    cfg->port = atoi(port);
    cfg->secured = secured;
    cfg->time_out = time_out;
}

static int test_open(char *host, char *port, int secured, int time_out)
{
    struct websock_config_t cfg;
    websock_handle_t h;
    double t0, took;

    config(&cfg, host, port, secured, time_out);
    t0 = now();
    h = websock_open(&cfg);
    took = now() - t0;
    if (h != NULL)
        websock_close(h);
    CHECK(h == NULL, "websock_open succeeded against a server that never answers");
    CHECK(took <= time_out + slack, "websock_open took %.2f s with time_out = %d", took,
          time_out);
    printf("[APP] websock_open (secured %d, time_out %d) failed after %.2f s: %s\n", secured,
           time_out, took, websock_last_error());
    return 0;
}

static int test_flood(char *host, char *port)
{
    struct websock_config_t cfg;
    websock_handle_t h;
    static char buf[4096];
    double t0, took;

    config(&cfg, host, port, 0, 10);
    h = websock_open(&cfg);
    CHECK(h != NULL, "websock_open");
    for (int i = 0; i < 3; i++) {
        websock_msg_hdr_t hdr;
        int len = (int)sizeof buf;
        int n;
        t0 = now();
        n = websock_recv(h, &hdr, buf, &len, 1);
        took = now() - t0;
        CHECK(took <= 1 + slack, "websock_recv(timeout 1 s) took %.2f s", took);
        CHECK(n == -1 || hdr.opcode == -1, "websock_recv returned opcode %d (a ping?)",
              hdr.opcode);
        printf("[APP] websock_recv(timeout 1 s) under a ping flood: %d after %.2f s\n", n,
               took);
        if (n < 0)
            break;
    }
    t0 = now();
    websock_close(h);
    took = now() - t0;
    CHECK(took <= WEBSOCK_CLOSE_TIMEOUT + slack, "websock_close took %.2f s", took);
    printf("[APP] websock_close under a ping flood: %.2f s\n", took);
    return 0;
}

static int events;

static void on_event(void *c, websock_cb_event_t evnt, websock_msg_hdr_t *msg_hdr,
                     char *payload, int len)
{
    (void)c;
    (void)evnt;
    (void)msg_hdr;
    (void)payload;
    (void)len;
    events++;
}

static int test_flood_callback(char *host, char *port)
{
    struct websock_config_t cfg;
    websock_handle_t h;
    double t0, took;

    config(&cfg, host, port, 0, 10);
    h = websock_open(&cfg);
    CHECK(h != NULL, "websock_open");
    CHECK(websock_set_event_handler(h, on_event, NULL) == 0, "websock_set_event_handler");
    sleep_ms(1500);
    t0 = now();
    websock_close(h);
    took = now() - t0;
    CHECK(took <= WEBSOCK_CLOSE_TIMEOUT + slack, "websock_close in callback mode took %.2f s",
          took);
    printf("[APP] websock_close in callback mode under a ping flood: %.2f s (%d events)\n",
           took, events);
    return 0;
}

static int test_send(char *host, char *port, int write_timeout)
{
    struct websock_config_t cfg;
    websock_handle_t h;
    int len = 16 << 20;
    int bound = write_timeout > 0 ? write_timeout : 2;
    char *msg;
    int rc;
    double t0, took;

    config(&cfg, host, port, 0, write_timeout > 0 ? 10 : 2);
    h = websock_open(&cfg);
    CHECK(h != NULL, "websock_open");
    if (write_timeout > 0)
        CHECK(websock_set_write_timeout(h, write_timeout) == 0, "websock_set_write_timeout");
    msg = calloc(1, (size_t)len);
    CHECK(msg != NULL, "out of memory");
    t0 = now();
    rc = websock_send_binary(h, msg, len);
    took = now() - t0;
    free(msg);
    if (rc == 0)
        websock_close(h);
    CHECK(rc == -1, "16 MiB sent to a server that never reads");
    CHECK(took <= bound + slack, "websock_send_binary took %.2f s, write timeout %d s", took,
          bound);
    printf("[APP] websock_send_binary to a server that never reads failed after %.2f s: %s\n",
           took, websock_last_error());
    t0 = now();
    websock_close(h);
    took = now() - t0;
    CHECK(took <= WEBSOCK_CLOSE_TIMEOUT + slack, "websock_close took %.2f s", took);
    return 0;
}

int main(int argc, char **argv)
{
    const char *s = getenv("SLACK");
    if (s != NULL && *s != 0)
        slack = atof(s);
    if (argc == 6 && strcmp(argv[1], "open") == 0)
        return test_open(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc == 4 && strcmp(argv[1], "flood") == 0)
        return test_flood(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "flood-callback") == 0)
        return test_flood_callback(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return test_send(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr,
            "usage: %s open HOST PORT SECURED TIME_OUT | flood HOST PORT |"
            " flood-callback HOST PORT | send HOST PORT WRITE_TIMEOUT\n",
            argv[0]);
    return 2;
}
