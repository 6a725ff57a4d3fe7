/* http.c — placeholder */
#include "internal.h"
#include "source.h"
#include <errno.h>
int sst_http_open(const char *url, sst_src **out, sst_error *err) {
  *out = NULL;
  return sst_error_set(err, EPROTONOSUPPORT, "%s: URLs are not supported", url);
}
