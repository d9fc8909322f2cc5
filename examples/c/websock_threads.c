/*
 * websock_threads.c - the SDK's threading pattern under load: one thread blocks in
 * websock_recv in a loop while another sends large messages on the same handle, to an echo
 * server (`wscope serve --echo`). The server echoes each message while it still reads it, so
 * the receive must go on while a send is blocked in its write: a send that held the handle
 * for its whole write (as the C API once did) hangs both threads forever.
 *
 *   websock_threads HOST PORT SECURED [CA_PEM_FILE] [SIZE_KIB...]
 *
 * Sends one binary message per SIZE_KIB (default: 8192 and 16384, i.e. 8 and 16 MiB), each
 * filled with a pattern of its own, and checks that every echo comes back whole and equal.
 * Exits non-zero on the first failure. Built and run by examples/c/run.sh (under `timeout`,
 * so a deadlock fails the run instead of hanging it).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websock.h"

#define MAX_MSGS 8

static websock_handle_t h;
static int n_msgs;
static long long sizes[MAX_MSGS];

/* What the receiving thread found. */
static int received;      /* whole messages checked */
static int recv_failed;   /* 1 when something went wrong */
static char recv_why[256];

/* Byte `i` of message `m`. */
static unsigned char pattern(int m, long long i)
{
    return (unsigned char)((i * 31 + m * 7 + (i >> 12)) & 0xff);
}

static void *receiver(void *arg)
{
    static char buf[65536];
    long long msg_at = 0;   /* bytes of the current message so far */
    long long frame_at = 0; /* bytes of the current frame so far */
    int idle = 0;
    (void)arg;
    while (received < n_msgs) {
        websock_msg_hdr_t hdr;
        int len = (int)sizeof buf;
        int n = websock_recv(h, &hdr, buf, &len, 1);
        if (n < 0) {
            snprintf(recv_why, sizeof recv_why, "websock_recv: %s", websock_last_error());
            recv_failed = 1;
            return NULL;
        }
        if (hdr.opcode == -1) {
            /* A timeout: fine while the sender is busy, but not for a minute. */
            if (++idle > 60) {
                snprintf(recv_why, sizeof recv_why, "nothing received for 60 s");
                recv_failed = 1;
                return NULL;
            }
            continue;
        }
        idle = 0;
        if (hdr.opcode == 10)
            continue; /* a pong */
        if (hdr.opcode != 2 && hdr.opcode != 0) {
            snprintf(recv_why, sizeof recv_why, "unexpected opcode %d", hdr.opcode);
            recv_failed = 1;
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if ((unsigned char)buf[i] != pattern(received, msg_at + i)) {
                snprintf(recv_why, sizeof recv_why, "message %d differs at byte %lld",
                         received, msg_at + i);
                recv_failed = 1;
                return NULL;
            }
        }
        msg_at += n;
        frame_at += n;
        if (frame_at == hdr.payload_len) {
            frame_at = 0;
            if (hdr.fin == 1) {
                if (msg_at != sizes[received]) {
                    snprintf(recv_why, sizeof recv_why,
                             "message %d: %lld bytes back, %lld sent", received, msg_at,
                             sizes[received]);
                    recv_failed = 1;
                    return NULL;
                }
                printf("[APP] echo %d: %lld bytes, all equal\n", received, msg_at);
                fflush(stdout);
                received++;
                msg_at = 0;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct websock_config_t cfg;
    char *ca = NULL;
    int ca_len = 0;
    int first_size = 4;
    pthread_t rx;
    int rc = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT SECURED [CA_PEM_FILE] [SIZE_KIB...]\n", argv[0]);
        return 2;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.hostname = argv[1];
    cfg.port = atoi(argv[2]);
    cfg.secured = atoi(argv[3]);
    cfg.time_out = 10;
    if (cfg.secured == 2) {
        FILE *f;
        long n;
        if (argc < 5) {
            fprintf(stderr, "SECURED 2 needs CA_PEM_FILE\n");
            return 2;
        }
        f = fopen(argv[4], "rb");
        if (f == NULL) {
            perror(argv[4]);
            return 2;
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        ca = malloc((size_t)n + 1);
        if (ca == NULL || fread(ca, 1, (size_t)n, f) != (size_t)n) {
            fclose(f);
            free(ca);
            return 2;
        }
        fclose(f);
        ca[n] = 0;
        ca_len = (int)n;
        cfg.ssl_config.ca_cert.buf = ca;
        cfg.ssl_config.ca_cert.len = ca_len;
        first_size = 5;
    }
    for (int i = first_size; i < argc && n_msgs < MAX_MSGS; i++)
        sizes[n_msgs++] = atoll(argv[i]) * 1024;
    if (n_msgs == 0) {
        sizes[n_msgs++] = 8LL << 20;
        sizes[n_msgs++] = 16LL << 20;
    }

    h = websock_open(&cfg);
    if (h == NULL) {
        fprintf(stderr, "[APP] FAILED: websock_open: %s\n", websock_last_error());
        free(ca);
        return 1;
    }
    printf("[APP] connected to %s:%d (secured %d)\n", cfg.hostname, cfg.port, cfg.secured);
    if (pthread_create(&rx, NULL, receiver, NULL) != 0) {
        fprintf(stderr, "[APP] FAILED: pthread_create\n");
        websock_close(h);
        free(ca);
        return 1;
    }
    rc = 0;
    for (int m = 0; m < n_msgs; m++) {
        char *msg = malloc((size_t)sizes[m]);
        if (msg == NULL) {
            fprintf(stderr, "[APP] FAILED: out of memory\n");
            rc = 1;
            break;
        }
        for (long long i = 0; i < sizes[m]; i++)
            msg[i] = (char)pattern(m, i);
        if (websock_send_binary(h, msg, (int)sizes[m]) != 0) {
            fprintf(stderr, "[APP] FAILED: websock_send_binary of %lld bytes: %s\n", sizes[m],
                    websock_last_error());
            rc = 1;
        } else {
            printf("[APP] sent %lld bytes\n", sizes[m]);
            fflush(stdout);
        }
        free(msg);
        if (rc != 0)
            break;
    }
    pthread_join(rx, NULL);
    if (recv_failed) {
        fprintf(stderr, "[APP] FAILED: receiver: %s\n", recv_why);
        rc = 1;
    } else if (rc == 0 && received != n_msgs) {
        fprintf(stderr, "[APP] FAILED: %d of %d echoes\n", received, n_msgs);
        rc = 1;
    }
    websock_close(h);
    free(ca);
    if (rc == 0)
        printf("[APP] two threads on one handle: all %d echoes correct\n", n_msgs);
    return rc;
}
