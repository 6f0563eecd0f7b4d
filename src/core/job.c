/* Jobs: set-up, extra headers and teardown. */
#include "core/job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ts_job_init(struct ts_job *job, enum ts_job_kind kind)
{
    memset(job, 0, sizeof *job);
    job->kind = kind;
    job->cacheable = kind == TS_JOB_IMAGE;
    job->freshness = kind == TS_JOB_IMAGE ? TS_FRESH_PUBLIC : TS_FRESH_REVALIDATE;
    job->src.fd = -1;
    ts_cancel_init(&job->cancel, 0);
    job->out.http_status = 200;
    ts_buf_init_capped(&job->identifier, TS_JOB_KEY_MAX);
    ts_buf_init_capped(&job->key, TS_JOB_KEY_MAX);
    ts_buf_init_capped(&job->file, TS_JOB_KEY_MAX);
    ts_buf_init_capped(&job->out.text, TS_JOB_TEXT_MAX);
}

static void free_headers(struct ts_header *h, int n)
{
    for (int i = 0; i < n; i++)
        ts_header_free(&h[i]);
}

void ts_job_free(struct ts_job *job)
{
    if (job->ctx_free)
        job->ctx_free(job->ctx);
    job->ctx = NULL;
    job->ctx_free = NULL;
    ts_buf_free(&job->identifier);
    ts_buf_free(&job->key);
    ts_buf_free(&job->file);
    ts_buf_free(&job->cache_key);
    ts_buf_free(&job->access.base);
    ts_buf_free(&job->out.text);
    for (int i = 0; i < TS_JOB_COMPANIONS; i++)
        ts_buf_free(&job->companions[i].text);
    free(job->pages);
    job->pages = NULL;
    free_headers(job->headers, job->nheaders);
    free_headers(job->out.headers, job->out.nheaders);
    job->nheaders = job->out.nheaders = 0;
    source_close(&job->src);
}

static int add_header(struct ts_header *list, int *n, const char *name, const char *fmt, va_list ap)
{
    if (*n >= TS_JOB_HEADERS)
        return TS_ENOMEM;
    int rc = ts_header_vset(&list[*n], name, fmt, ap);
    if (rc == TS_OK)
        (*n)++;
    return rc;
}

int ts_job_add_header(struct ts_job *job, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_header(job->headers, &job->nheaders, name, fmt, ap);
    va_end(ap);
    return rc;
}

int ts_product_add_header(struct ts_product *out, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_header(out->headers, &out->nheaders, name, fmt, ap);
    va_end(ap);
    return rc;
}

void ts_product_set_type(struct ts_product *out, const char *type)
{
    snprintf(out->type, sizeof out->type, "%s", type);
}

int ts_product_text(struct ts_product *out, const char *text, struct ts_err *err)
{
    out->is_text = true;
    int rc = ts_buf_append_str(&out->text, text);
    return rc ? ts_fail(err, rc, "answer too large") : TS_OK;
}

int ts_job_reply(struct ts_job *job, int http_status, const char *type, const char *text)
{
    job->kind = TS_JOB_REPLY;
    job->out.http_status = http_status;
    job->out.is_text = true;
    ts_product_set_type(&job->out, type);
    return ts_buf_append_str(&job->out.text, text);
}
