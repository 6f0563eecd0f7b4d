/* The web front: for now only a landing page that points at the demo image. */
#include "web/web.h"

#include <string.h>

static void landing_page(const struct ts_app *app, struct ts_response *res)
{
    ts_response_set_type(res, "text/html; charset=utf-8");
    ts_buf_appendf(&res->body,
                   "<!doctype html><html><head><meta charset=\"utf-8\"><title>Tessera</title>"
                   "</head><body><h1>Tessera</h1><p>A IIIF Image API 3.0 / 2.1 server.</p>");
    if (app->cfg.demo_image[0])
        ts_buf_appendf(&res->body,
                       "<p>Demo image: <a href=\"/iiif/3/demo/info.json\">info.json</a>, "
                       "<a href=\"/iiif/3/demo/full/max/0/default.jpg\">full image</a>, "
                       "<a href=\"/iiif/3/demo/full/!400,400/0/default.jpg\">thumbnail</a>.</p>");
    ts_buf_appendf(&res->body, "<p>Images under the root are served at "
                               "<code>/iiif/3/{path with %%2F for /}/info.json</code>.</p>"
                               "</body></html>\n");
}

bool web_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res)
{
    if (strcmp(req->path, "/") != 0)
        return false;
    landing_page(app, res);
    return true;
}
