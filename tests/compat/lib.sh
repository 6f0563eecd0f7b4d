# Shared helpers for the compat tests: free ports, bounded waits, nginx config, cleanup.
# Sourced by the test scripts; every server started is recorded and stopped on exit.

PIDS=""

skip() {
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $*"
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (at most ~20 s) until a URL answers with something other than a gateway error: nginx
# answers 502 at once while the FastCGI process behind it is still starting.
wait_http() {
    i=0
    while [ $i -lt 200 ]; do
        code=$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$1" || true)
        case "$code" in
        000 | 502 | 503 | 504) ;;
        *) return 0 ;;
        esac
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

started() {
    PIDS="$PIDS $1"
}

# stop_pid PID: SIGTERM, up to 5 s grace, then SIGKILL; the process stays in PIDS (harmless).
stop_pid() {
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# SIGTERM, then up to 5 s grace, then SIGKILL: never leaves a server behind.
stop_all() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null
    done
    PIDS=""
}

# nginx_head FILE WORKDIR PORT: the start of a loopback nginx configuration, up to and inside
# its one server block (the caller writes the rest).
nginx_head() {
    user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    mkdir -p "$2/nginx-tmp"
    cat >"$1" <<CONF
$user
daemon off;
worker_processes 1;
pid $2/nginx.pid;
error_log $2/nginx-error.log;
events { worker_connections 64; }
http {
    access_log $2/nginx-access.log;
    client_body_temp_path $2/nginx-tmp/body;
    fastcgi_temp_path $2/nginx-tmp/fastcgi;
    proxy_temp_path $2/nginx-tmp/proxy;
    uwsgi_temp_path $2/nginx-tmp/uwsgi;
    scgi_temp_path $2/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$3;
CONF
}

# nginx_conf FILE WORKDIR PORT UPSTREAM: a loopback nginx passing everything to FastCGI.
nginx_conf() {
    nginx_head "$1" "$2" "$3"
    cat >>"$1" <<CONF
        location / {
            fastcgi_pass $4;
            # Before the include: the first of two equal params wins in libfcgi.
            # \$request_uri keeps %2F; \$http_host keeps the port for ids.
            fastcgi_param REQUEST_URI \$request_uri;
            fastcgi_param HTTP_HOST \$http_host;
            include /etc/nginx/fastcgi_params;
        }
    }
}
CONF
}

# start_s3rver WORK BUCKET: s3rver (npm, from TESSERA_NODE_MODULES) on a free loopback port
# with BUCKET made, its data in WORK/s3rver; sets S3 to its URL. Skips (77) when s3rver or node
# is missing, fails when it does not answer within 10 s. Its access key and secret are both
# S3RVER.
start_s3rver() {
    s3rver="${TESSERA_NODE_MODULES:-}/.bin/s3rver"
    [ -x "$s3rver" ] || skip "s3rver is not installed in ${TESSERA_NODE_MODULES:-?} (npm ci failed or npm is missing)"
    command -v node >/dev/null || skip "node not installed"
    s3_port=$(free_port)
    mkdir -p "$1/s3rver"
    "$s3rver" -d "$1/s3rver" -a 127.0.0.1 -p "$s3_port" -s --configure-bucket "$2" \
        >"$1/s3rver.log" 2>&1 &
    started $!
    S3="http://127.0.0.1:$s3_port"
    i=0
    while ! curl -s -o /dev/null --max-time 1 "$S3/" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    curl -s -o /dev/null --max-time 1 "$S3/" || fail "s3rver did not start: $(cat "$1/s3rver.log")"
}

# s3_put FILE URL: uploads FILE to s3rver, signed with its key (SigV4, as a client would).
s3_put() {
    s=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$1" "$2")
    [ "$s" = 200 ] || fail "cannot upload $1 to $2: status $s"
}

# metric_at URL SERIES: the value of one series (name and labels exactly as written) in the
# /metrics of the server at URL; 0 when it is absent.
metric_at() {
    curl -s --max-time 5 "$1/metrics" |
        awk -v k="$2" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }'
}

# promtool_at URL: promtool's verdict on the server's /metrics ("" when it accepts them or is
# not installed, its complaint otherwise).
promtool_at() {
    command -v promtool >/dev/null || return 0
    curl -s --max-time 5 "$1/metrics" | promtool check metrics 2>&1 >/dev/null | head -5
}

# Mean absolute difference of two images of the same size (vips is the test oracle).
mean_diff() {
    vips subtract "$1" "$2" "$3/d.v" >/dev/null && vips abs "$3/d.v" "$3/a.v" >/dev/null &&
        vips avg "$3/a.v"
}

dims() {
    echo "$(vipsheader -f width "$1")x$(vipsheader -f height "$1")"
}

# apache_conf FILE WORK PORT: the head of a self-contained httpd.conf (run with apache2 -f FILE
# -DFOREGROUND) serving WORK/htdocs on loopback with mod_rewrite and mod_fcgid; the caller
# appends its own part. As root, Apache must switch to a user for its children and the FastCGI
# programs it spawns: www-data, so WORK must be readable by it (the callers chmod it).
apache_conf() {
    m=/usr/lib/apache2/modules
    mkdir -p "$2/apache/run" "$2/apache/fcgid" "$2/htdocs" "$2/log"
    chmod 1777 "$2/log"
    user=""
    if [ "$(id -u)" = 0 ]; then
        user="User www-data
Group www-data"
        chown www-data "$2/apache/fcgid" # the spawner binds its sockets there as www-data
    fi
    cat >"$1" <<CONF
ServerRoot "$2/apache"
ServerName 127.0.0.1
Listen 127.0.0.1:$3
PidFile "$2/apache/run/httpd.pid"
DefaultRuntimeDir "$2/apache/run"
ErrorLog "$2/apache/error.log"
LogLevel warn
$user
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule alias_module $m/mod_alias.so
LoadModule mime_module $m/mod_mime.so
TypesConfig /dev/null
LoadModule rewrite_module $m/mod_rewrite.so
LoadModule fcgid_module $m/mod_fcgid.so
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
DocumentRoot "$2/htdocs"
FcgidIPCDir "$2/apache/fcgid"
FcgidProcessTableFile "$2/apache/fcgid/shm"
LogFormat "%h \"%r\" %>s %b" brief
CustomLog "$2/apache/access.log" brief
CONF
}

# Apache children and the programs mod_fcgid spawned that outlived the stop: ours by the work
# directory in their command line (apache2 -f WORK/httpd.conf, WORK/.../iipsrv.fcgi), stopped
# one by one by id.
stop_spawned() {
    for p in $(pgrep -f "$1/(httpd.conf|[a-z-]*/iipsrv.fcgi)" 2>/dev/null); do
        [ "$p" != $$ ] && stop_pid "$p"
    done
}

# nginx_iipimage_conf FILE WORKDIR PORT UPSTREAM: a loopback nginx set up as IIPImage documents
# it for iipsrv: its IIIF rewrite, verbatim, and the FastCGI location with Debian's stock
# fastcgi_params.
nginx_iipimage_conf() {
    nginx_head "$1" "$2" "$3"
    cat >>"$1" <<CONF
        # From IIPImage's IIIF documentation (https://iipimage.sourceforge.io/documentation/iiif),
        # verbatim:
        merge_slashes off;
        rewrite ^/iiif/(.*) /fcgi-bin/iipsrv.fcgi?IIIF=%2F\$1 last;
        location /fcgi-bin/iipsrv.fcgi {
            fastcgi_pass $4;
            include /etc/nginx/fastcgi_params;
        }
    }
}
CONF
}

# The id base behind nginx_iipimage_conf for a client of http://127.0.0.1:PORT: Debian 12's
# fastcgi_params sends HTTP_HOST as \$host, which drops the port (a security update, explained
# in that file), and ids are built from HTTP_HOST, as iipsrv builds them.
nginx_id_base() {
    if grep -q '^fastcgi_param *HTTP_HOST *\$host;' /etc/nginx/fastcgi_params; then
        echo "http://127.0.0.1$2"
    else
        echo "$1$2"
    fi
}
