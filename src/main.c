/* tessera: parse the configuration, start the HTTP front end, stop cleanly on a signal. */
#include "config.h"
#include "config_env.h"
#include "core/app.h"
#include "server/fcgi.h"
#include "server/http.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a reload reads again: the same sources as the start, in the same order. */
struct reload_args {
    int argc;
    char **argv;
    struct ts_config started; /* as given at start */
    struct ts_config given;   /* as the last successful read gave it */
};

/* SIGHUP: read the configuration again (environment, --config file, flags) and apply what can
 * change while serving; a configuration that does not read keeps the one in force. */
static void reload(struct ts_app *app, void *ctx)
{
    struct reload_args *r = ctx;
    struct ts_config *fresh = malloc(sizeof *fresh);
    struct ts_err err = {0};
    if (!fresh) {
        ts_log("reload: out of memory; keeping the configuration in force");
        return;
    }
    ts_config_defaults(fresh);
    int rc = ts_config_from_env(fresh, &err);
    rc = rc ? rc : ts_config_parse_args(fresh, r->argc, r->argv, &err);
    rc = rc ? rc : ts_app_reload(app, &r->started, &r->given, fresh, &err);
    if (rc)
        ts_log("reload failed, keeping the configuration in force: %s", err.msg);
    else
        r->given = *fresh;
    free(fresh);
}

int main(int argc, char **argv)
{
    struct ts_config cfg;
    struct ts_err err = {0};
    ts_config_defaults(&cfg);
    if (ts_config_from_env(&cfg, &err)) {
        fprintf(stderr, "tessera: %s\n", err.msg);
        return 2;
    }
    int rc = ts_config_parse_args(&cfg, argc, argv, &err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "tessera: %s\n", err.msg);
        return 2;
    }

    if (!cfg.web_dir[0])
        ts_config_default_web_dir(cfg.web_dir, sizeof cfg.web_dir);

    /* Block the stop signals in every thread; the main thread collects them with sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    bool listen_given = false;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--listen", 8))
            listen_given = true;
    bool fcgi = cfg.fcgi_listen[0] || (!listen_given && ts_fcgi_inherited_socket());
    /* Run as iipsrv is run (FastCGI) with no root named, its clients send full paths, as they
     * do to Debian's stock iipsrv set-up. Served on HTTP, an unnamed root stays the one folder. */
    cfg.open_anywhere = fcgi && !cfg.root_given;
    struct ts_app app;
    if (ts_app_init(&app, &cfg, &err)) {
        fprintf(stderr, "tessera: %s\n", err.msg);
        ts_app_free(&app);
        return 2;
    }
    /* Static: the struct is large, and the signal loop needs it to the end. */
    static struct reload_args again;
    again = (struct reload_args){argc, argv, cfg, cfg};
    app.hangup = reload;
    app.hangup_ctx = &again;
    if (fcgi) {
        rc = ts_fcgi_run(&app, &err);
        if (rc)
            fprintf(stderr, "tessera: %s\n", err.msg);
        ts_app_free(&app);
        return rc ? 1 : 0;
    }
    if (cfg.fcgi_backlog) {
        fprintf(stderr, "tessera: --backlog applies to FastCGI only (give --bind or --fcgi)\n");
        ts_app_free(&app);
        return 2;
    }
    struct ts_http_server *srv = NULL;
    if (ts_http_start(&app, &srv, &err)) {
        fprintf(stderr, "tessera: %s\n", err.msg);
        ts_app_free(&app);
        return 1;
    }
    const char *host = cfg.listen_host;
    bool v6 = strchr(host, ':') != NULL;
    printf("tessera: listening on http://%s%s%s:%u/\n", v6 ? "[" : "", host, v6 ? "]" : "",
           (unsigned)ts_http_port(srv));
    fflush(stdout);
    ts_log("serving %s%s%s", cfg.root, cfg.demo_image[0] ? " and the demo image " : "",
           cfg.demo_image);

    for (;;) {
        int sig = 0;
        sigwait(&stop, &sig);
        if (sig == SIGHUP) {
            ts_app_hangup(&app);
            continue;
        }
        ts_log("signal %d: finishing open requests, then stopping", sig);
        break;
    }
    ts_http_stop(srv, 10);
    ts_app_free(&app);
    return 0;
}
