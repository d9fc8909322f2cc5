/*
 * websock_echo.c - the embedded SDK's WebSocket client flow, written against websock.h:
 * open, send text and binary, a receive loop, close. Run against an echo server
 * (`wscope serve --echo`); every step is checked and the program exits non-zero on the
 * first failure.
 *
 *   websock_echo HOST PORT SECURED [CA_PEM_FILE]
 *
 * SECURED: 0 plain ws, 1 TLS without verification, 2 TLS verified against CA_PEM_FILE.
 * Built by examples/c/run.sh with `cc` against include/websock.h and libwscope_ffi.a.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "websock.h"

#define APP_MESSAGE "Hello World"
#define BIG_LEN (1024 * 1024)

static int failures;

/* Callback mode (websock_set_event_handler): what the handler saw, shared with main. */
struct events {
    pthread_mutex_t lock;
    char text[64];
    int text_len;
    int errors;
};

static void on_event(void *c, websock_cb_event_t evnt, websock_msg_hdr_t *msg_hdr,
                     char *payload, int len)
{
    struct events *ev = c;
    pthread_mutex_lock(&ev->lock);
    if (evnt == WEBSOCK_CB_EVENT_DATA && msg_hdr->opcode == 1 && len < (int)sizeof(ev->text)) {
        memcpy(ev->text, payload, (size_t)len);
        ev->text_len = len;
    } else if (evnt == WEBSOCK_CB_EVENT_ERROR) {
        ev->errors++;
    }
    pthread_mutex_unlock(&ev->lock);
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "[APP] FAILED at line %d: ", __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " (last error: %s)\n", websock_last_error());   \
            failures++;                                                      \
            goto out;                                                        \
        }                                                                    \
    } while (0)

static char *read_file(const char *path, int *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = 0;
        *len = (int)n;
    }
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Receives one whole message into out (capacity cap) with a receive buffer of piece bytes;
 * returns its length, or -1. Checks that every piece of a frame carries the same header. */
static long recv_message(websock_handle_t h, int *opcode, char *out, long cap, int piece,
                         int *pieces)
{
    websock_msg_hdr_t hdr;
    char *buf = malloc((size_t)piece);
    long total = 0, frame_got = 0, frame_len = -1;
    int first_opcode = -1, tries = 0;
    *pieces = 0;
    if (buf == NULL)
        return -1;
    for (;;) {
        int len = piece;
        int ret = websock_recv(h, &hdr, buf, &len, 10);
        if (ret < 0) {
            fprintf(stderr, "[APP] websock_recv: %s\n", websock_last_error());
            total = -1;
            break;
        }
        if (hdr.opcode < 0) {
            /* Nothing yet: keep calling (bounded). */
            if (++tries > 3) {
                total = -1;
                break;
            }
            continue;
        }
        if (ret != len || ret > piece) {
            total = -1;
            break;
        }
        if (hdr.opcode == 10)
            continue; /* a pong: not part of the message */
        if (frame_len < 0) {
            frame_len = hdr.payload_len;
            frame_got = 0;
            if (first_opcode < 0)
                first_opcode = hdr.opcode;
        } else if (hdr.payload_len != frame_len) {
            fprintf(stderr, "[APP] payload_len changed inside a frame\n");
            total = -1;
            break;
        }
        if (total + ret > cap) {
            total = -1;
            break;
        }
        memcpy(out + total, buf, (size_t)ret);
        total += ret;
        frame_got += ret;
        (*pieces)++;
        if (frame_got == frame_len) {
            frame_len = -1;
            if (hdr.fin == 1)
                break;
        }
    }
    free(buf);
    *opcode = first_opcode;
    return total;
}

int main(int argc, char **argv)
{
    websock_config_t cfg;
    websock_handle_t h = NULL;
    websock_msg_hdr_t hdr;
    char buf[128];
    char *ca = NULL, *big = NULL, *echo = NULL;
    int ca_len = 0, len, ret, opcode, pieces, i;
    long got;
    double t0, waited;

    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT SECURED [CA_PEM_FILE]\n", argv[0]);
        return 2;
    }

    /* The SDK example's configuration. */
    memset(&cfg, 0, sizeof(cfg));
    cfg.hostname = argv[1];
    cfg.port = atoi(argv[2]);
    cfg.uri = "/";
    cfg.secured = atoi(argv[3]);
    cfg.time_out = 5;
    if (cfg.secured == 2) {
        CHECK(argc > 4, "secured 2 needs a CA file");
        ca = read_file(argv[4], &ca_len);
        CHECK(ca != NULL, "cannot read %s", argv[4]);
        cfg.ssl_config.ca_cert.buf = ca;
        cfg.ssl_config.ca_cert.len = ca_len;
        cfg.ssl_config.auth_mode = SSL_WRAP_VERIFY_REQUIRED;
    } else if (cfg.secured == 1) {
        cfg.ssl_config.auth_mode = SSL_WRAP_VERIFY_NONE;
    }
    cfg.hndshk_hdrs[0].name = "X-Websock-Example";
    cfg.hndshk_hdrs[0].val = "1";
    cfg.num_hndshk_hdrs = 1;

    /* A header that clashes with an implicit one is refused. */
    cfg.hndshk_hdrs[1].name = "Sec-WebSocket-Key";
    cfg.hndshk_hdrs[1].val = "dGhlIHNhbXBsZSBub25jZQ==";
    cfg.num_hndshk_hdrs = 2;
    h = websock_open(&cfg);
    CHECK(h == NULL, "a clashing Sec-WebSocket-Key header was accepted");
    CHECK(strlen(websock_last_error()) > 0, "no error text for the refused header");
    cfg.num_hndshk_hdrs = 1;

    h = websock_open(&cfg);
    CHECK(h != NULL, "websock_open");
    printf("[APP] connected to %s:%d (secured %d)\n", cfg.hostname, cfg.port, cfg.secured);

    /* Text round trip, received the way the SDK example does (one 128-byte buffer). */
    ret = websock_send_text(h, APP_MESSAGE, (int)strlen(APP_MESSAGE));
    CHECK(ret == 0, "websock_send_text returned %d", ret);
    len = sizeof(buf) - 1;
    ret = websock_recv(h, &hdr, buf, &len, 10);
    CHECK(ret == (int)strlen(APP_MESSAGE) && len == ret, "websock_recv returned %d", ret);
    CHECK(hdr.opcode == 1 && hdr.fin == 1 && hdr.payload_len == ret, "text header %d/%d/%lld",
          hdr.opcode, hdr.fin, hdr.payload_len);
    buf[ret] = 0;
    CHECK(strcmp(buf, APP_MESSAGE) == 0, "echo mismatch: %s", buf);
    printf("[APP] Received Message = %s\n", buf);

    /* Binary round trip. */
    ret = websock_send_binary(h, "\x00\x01\x02\xff", 4);
    CHECK(ret == 0, "websock_send_binary returned %d", ret);
    len = sizeof(buf);
    ret = websock_recv(h, &hdr, buf, &len, 10);
    CHECK(ret == 4 && hdr.opcode == 2 && hdr.fin == 1 && hdr.payload_len == 4,
          "binary echo %d opcode %d", ret, hdr.opcode);
    CHECK(memcmp(buf, "\x00\x01\x02\xff", 4) == 0, "binary echo content");

    /* 1 MiB binary message back through a 1000-byte buffer, piece by piece. */
    big = malloc(BIG_LEN);
    echo = malloc(BIG_LEN);
    CHECK(big != NULL && echo != NULL, "malloc");
    for (i = 0; i < BIG_LEN; i++)
        big[i] = (char)(i * 31 + 7);
    ret = websock_send_binary(h, big, BIG_LEN);
    CHECK(ret == 0, "websock_send_binary 1 MiB returned %d", ret);
    got = recv_message(h, &opcode, echo, BIG_LEN, 1000, &pieces);
    CHECK(got == BIG_LEN, "1 MiB echo: got %ld bytes", got);
    CHECK(opcode == 2, "1 MiB echo opcode %d", opcode);
    CHECK(pieces >= BIG_LEN / 1000, "1 MiB echo came in %d pieces", pieces);
    CHECK(memcmp(big, echo, BIG_LEN) == 0, "1 MiB echo content");
    printf("[APP] 1 MiB binary echo received in %d pieces\n", pieces);

    /* Ping: the server's pong echoes the payload. */
    ret = websock_send_ping(h, "tick", 4);
    CHECK(ret == 0, "websock_send_ping returned %d", ret);
    len = sizeof(buf);
    ret = websock_recv(h, &hdr, buf, &len, 10);
    CHECK(ret == 4 && hdr.opcode == 10 && memcmp(buf, "tick", 4) == 0, "pong: %d opcode %d",
          ret, hdr.opcode);
    ret = websock_send_pong(h, "hb", 2);
    CHECK(ret == 0, "websock_send_pong returned %d", ret);

    /* Nothing sent: recv returns 0 with opcode -1 after the timeout (seconds). */
    t0 = now();
    len = sizeof(buf);
    ret = websock_recv(h, &hdr, buf, &len, 1);
    waited = now() - t0;
    CHECK(ret == 0 && hdr.opcode == -1 && len == 0, "idle recv: %d opcode %d", ret, hdr.opcode);
    CHECK(waited > 0.9 && waited < 3.0, "idle recv waited %.2f s", waited);

    /* Invalid text and invalid close statuses are refused; a valid reason is kept. */
    CHECK(websock_send_text(h, "\xed\xa0\x80", 3) == -1, "invalid UTF-8 text accepted");
    CHECK(websock_close_reason(h, LWS_CLOSE_STATUS_NO_STATUS, NULL, 0) == -1, "1005 accepted");
    CHECK(websock_close_reason(h, LWS_CLOSE_STATUS_NOSTATUS_CONTEXT_DESTROY, NULL, 0) == -1,
          "9999 accepted");
    CHECK(websock_close_reason(h, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"bye", 3) == 0,
          "1001 refused");

    /* The SDK's callback mode on a second connection. */
    {
        struct events ev;
        websock_handle_t h2;
        int done = 0;
        memset(&ev, 0, sizeof(ev));
        pthread_mutex_init(&ev.lock, NULL);
        h2 = websock_open(&cfg);
        CHECK(h2 != NULL, "second websock_open");
        websock_set_event_handler(h2, on_event, &ev);
        ret = websock_send_text(h2, "via callback", 12);
        for (i = 0; i < 500 && !done && ret == 0; i++) {
            struct timespec ms10 = {0, 10 * 1000 * 1000};
            nanosleep(&ms10, NULL);
            pthread_mutex_lock(&ev.lock);
            done = ev.text_len == 12 && memcmp(ev.text, "via callback", 12) == 0;
            pthread_mutex_unlock(&ev.lock);
        }
        websock_close(h2); /* stops the handler's thread first */
        pthread_mutex_destroy(&ev.lock);
        CHECK(ret == 0 && done, "callback mode: echo not seen");
        printf("[APP] callback mode: echo received\n");
    }

out:
    websock_close(h);
    free(ca);
    free(big);
    free(echo);
    if (failures == 0)
        printf("[APP] all checks passed\n");
    return failures == 0 ? 0 : 1;
}
