/* iipsrv-compatible protocols: not yet implemented, so nothing is claimed. */
#include "protocol/compat.h"

bool compat_handle(struct ts_app *app, const struct ts_request *req, struct ts_response *res)
{
    (void)app;
    (void)req;
    (void)res;
    return false;
}
