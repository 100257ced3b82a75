/*
 * mock-cluster: a librdkafka mock Kafka cluster driven over stdin/stdout, so tests can run
 * real Kafka clients (kafkajs, kcat) without a broker installation.
 *
 *   usage: mock-cluster [brokers [max-request-bytes]]   (default 1 broker, 100 MB requests)
 *
 * max-request-bytes: the brokers close the connection of a client whose request is larger, as
 * a real broker refuses a record batch over its message.max.bytes; the mock checks no batch
 * size of its own, only the size of a whole request (librdkafka's receive.message.max.bytes
 * of the instance hosting it).
 *
 * Prints the bootstrap servers ("127.0.0.1:PORT,...") as the first line on stdout, then
 * answers one line per command read from stdin:
 *
 *   create-topic <name> <partitions> [replication]   -> ok | error <CODE> <message>
 *   broker-down <id> | broker-up <id>                -> ok | error <CODE> <message>
 *   inject-errors <api-key> <error-code>...          -> ok | error <CODE> <message>
 *       the next requests of that type (e.g. 14 = SyncGroup) fail with these Kafka error
 *       codes, one per request, in order (-195 makes the broker drop the connection)
 *   ping                                             -> ok
 *
 * Exits 0 when stdin closes or on SIGTERM, SIGINT or SIGHUP, so a test process that dies
 * without cleaning up (its end of the pipe closes) never leaves a cluster behind.
 * Linux only (signalfd, PR_SET_PDEATHSIG), like the Debian machines it runs on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define LINE_MAX_LEN 4096

static int broker_count = 1;
static int max_request_bytes = 0; /* 0: librdkafka's default */

/* librdkafka logs from its own threads; stdout carries the protocol, so logs go to stderr
 * and only warnings and worse, to keep test output quiet. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
        (void)rk;
        if (level <= 4)
                fprintf(stderr, "mock-cluster: %s: %s\n", fac, buf);
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
}

static void reply_err(rd_kafka_resp_err_t err) {
        if (err)
                reply("error %s %s", rd_kafka_err2name(err), rd_kafka_err2str(err));
        else
                reply("ok");
}

static int parse_int(const char *s, int min, int max, int *out) {
        char *end;
        long v;
        if (!s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max)
                return -1;
        *out = (int)v;
        return 0;
}

static void handle_command(rd_kafka_mock_cluster_t *mcluster, char *line) {
        char *save = NULL;
        char *cmd  = strtok_r(line, " \t\r", &save);
        int n, id;

        if (!cmd)
                return; /* blank lines are ignored so interactive use stays forgiving */

        if (!strcmp(cmd, "ping")) {
                reply("ok");

        } else if (!strcmp(cmd, "create-topic")) {
                const char *name = strtok_r(NULL, " \t\r", &save);
                const char *part = strtok_r(NULL, " \t\r", &save);
                const char *repl = strtok_r(NULL, " \t\r", &save);
                /* A real cluster replicates to at most 3 brokers by default; so does this. */
                int replication = broker_count < 3 ? broker_count : 3;
                if (!name || parse_int(part, 1, 100000, &n) ||
                    (repl && parse_int(repl, 1, broker_count, &replication))) {
                        reply("error INVALID_REQUEST usage: create-topic <name> <partitions> "
                              "[replication<=%d]",
                              broker_count);
                        return;
                }
                reply_err(rd_kafka_mock_topic_create(mcluster, name, n, replication));

        } else if (!strcmp(cmd, "broker-down") || !strcmp(cmd, "broker-up")) {
                if (parse_int(strtok_r(NULL, " \t\r", &save), 1, broker_count, &id)) {
                        reply("error INVALID_REQUEST usage: %s <1..%d>", cmd, broker_count);
                        return;
                }
                reply_err(!strcmp(cmd, "broker-down")
                              ? rd_kafka_mock_broker_set_down(mcluster, id)
                              : rd_kafka_mock_broker_set_up(mcluster, id));

        } else if (!strcmp(cmd, "inject-errors")) {
                rd_kafka_resp_err_t errors[64];
                size_t cnt = 0;
                const char *tok;
                int api_key, code;
                if (parse_int(strtok_r(NULL, " \t\r", &save), 0, 1000, &api_key)) {
                        reply("error INVALID_REQUEST usage: inject-errors <api-key> <error-code>...");
                        return;
                }
                while ((tok = strtok_r(NULL, " \t\r", &save))) {
                        if (cnt == sizeof(errors) / sizeof(*errors) ||
                            parse_int(tok, -200, 1000, &code)) {
                                reply("error INVALID_REQUEST at most 64 error codes, each -200..1000");
                                return;
                        }
                        errors[cnt++] = (rd_kafka_resp_err_t)code;
                }
                if (cnt == 0) {
                        reply("error INVALID_REQUEST usage: inject-errors <api-key> <error-code>...");
                        return;
                }
                rd_kafka_mock_push_request_errors_array(mcluster, (int16_t)api_key, cnt, errors);
                reply("ok");

        } else {
                reply("error INVALID_REQUEST unknown command '%s'", cmd);
        }
}

int main(int argc, char **argv) {
        char errstr[512];
        char buf[LINE_MAX_LEN];
        size_t used = 0;
        sigset_t sigs;
        int sfd;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mcluster;

        if (argc > 3 || (argc >= 2 && parse_int(argv[1], 1, 64, &broker_count)) ||
            (argc == 3 && parse_int(argv[2], 1000, 1000000000, &max_request_bytes))) {
                fprintf(stderr, "usage: %s [brokers 1..64 [max-request-bytes 1000..1000000000]]\n",
                        argv[0]);
                return 2;
        }

        /* Belt and braces beside the stdin-EOF rule: die with the parent even if the pipe
         * was inherited by a grandchild and so never closes. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
                return 0;

        /* Blocked before librdkafka starts its threads (they inherit the mask), so the
         * signals are only ever read here, through the signalfd. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGHUP);
        sigprocmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
        if (sfd == -1) {
                perror("mock-cluster: signalfd");
                return 1;
        }

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_cb);
        if (max_request_bytes > 0) {
                char value[16];
                snprintf(value, sizeof(value), "%d", max_request_bytes);
                if (rd_kafka_conf_set(conf, "receive.message.max.bytes", value, errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                        fprintf(stderr, "mock-cluster: %s\n", errstr);
                        return 1;
                }
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "mock-cluster: rd_kafka_new: %s\n", errstr);
                return 1;
        }

        mcluster = rd_kafka_mock_cluster_new(rk, broker_count);
        if (!mcluster) {
                fprintf(stderr, "mock-cluster: could not create a %d-broker mock cluster\n",
                        broker_count);
                rd_kafka_destroy(rk);
                return 1;
        }

        reply("%s", rd_kafka_mock_cluster_bootstraps(mcluster));

        for (;;) {
                struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                        {.fd = sfd, .events = POLLIN}};
                ssize_t r;
                char *nl;

                if (poll(fds, 2, -1) == -1) {
                        if (errno == EINTR)
                                continue;
                        perror("mock-cluster: poll");
                        break;
                }
                if (fds[1].revents)
                        break;
                if (!fds[0].revents)
                        continue;

                r = read(STDIN_FILENO, buf + used, sizeof(buf) - 1 - used);
                if (r == -1 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                used += (size_t)r;
                buf[used] = '\0';

                while ((nl = memchr(buf, '\n', used))) {
                        size_t len = (size_t)(nl - buf) + 1;
                        *nl        = '\0';
                        handle_command(mcluster, buf);
                        memmove(buf, buf + len, used - len);
                        used -= len;
                }
                if (used == sizeof(buf) - 1) {
                        reply("error INVALID_REQUEST line longer than %d bytes", LINE_MAX_LEN - 2);
                        used = 0;
                }
        }

        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
