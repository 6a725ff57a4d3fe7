/* curl_load.c — dlopen of libcurl on the first URL (see curl_load.h). */
#define SST_CURL_LOAD_C
#include "curl_load.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct sst_curl_api sst_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc = ENOENT;
static const char *load_why = "libcurl.so.4 not loaded";
static char why_buf[128];

/* Each entry of the table and the symbol that fills it. */
#define SYM(field, name)                                                       \
  { offsetof(struct sst_curl_api, field), name }
static const struct {
  size_t at;
  const char *name;
} syms[] = {
    SYM(global_init, "curl_global_init"),
    SYM(easy_init, "curl_easy_init"),
    SYM(easy_setopt, "curl_easy_setopt"),
    SYM(easy_perform, "curl_easy_perform"),
    SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_strerror, "curl_easy_strerror"),
    SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"),
    SYM(multi_init, "curl_multi_init"),
    SYM(multi_setopt, "curl_multi_setopt"),
    SYM(multi_add_handle, "curl_multi_add_handle"),
    SYM(multi_remove_handle, "curl_multi_remove_handle"),
    SYM(multi_perform, "curl_multi_perform"),
    SYM(multi_poll, "curl_multi_poll"),
    SYM(multi_info_read, "curl_multi_info_read"),
    SYM(multi_wakeup, "curl_multi_wakeup"),
    SYM(multi_cleanup, "curl_multi_cleanup"),
    SYM(multi_strerror, "curl_multi_strerror"),
};

static void load(void) {
  /* Never closed: libcurl keeps global state until the process ends. */
  void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    load_why = "libcurl.so.4 cannot be loaded (Debian package libcurl4)";
    return;
  }
  struct sst_curl_api api;
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    void *f = dlsym(h, syms[i].name);
    if (f == NULL) {
      snprintf(why_buf, sizeof why_buf, "libcurl.so.4 has no %s (too old)",
               syms[i].name);
      load_why = why_buf;
      return;
    }
    /* POSIX: a function's address from dlsym converts through void *. */
    memcpy((char *)&api + syms[i].at, &f, sizeof f);
  }
  sst_curl = api;
  load_rc = 0;
  load_why = NULL;
}

int sst_curl_load(const char **why) {
  pthread_once(&load_once, load);
  if (why != NULL)
    *why = load_why;
  return load_rc;
}
