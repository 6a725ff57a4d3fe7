/* main.c — the sst command-line tool: build a table from records, look
 * keys up, scan ranges and prefixes, dump, pack a directory tree into a
 * table and unpack it, list a table as a tree, merge, show statistics,
 * verify.
 *
 * This file holds the table of commands and dispatches to them; each
 * command lives in the file of its family with its help page beside it
 * (cli.h says how a command is written).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const command commands[] = {
    {"build", cmd_build, "build a table from key,value records",
     &cmd_build_help},
    {"get", cmd_get, "print the values of keys", &cmd_get_help},
    {"scan", cmd_scan, "print the records of a key range or prefix",
     &cmd_scan_help},
    {"dump", cmd_dump, "print every record, in a form sst build reads back",
     &cmd_dump_help},
    {"pack", cmd_pack, "build a table from a directory tree", &cmd_pack_help},
    {"unpack", cmd_unpack, "write a table's keys out as a directory tree",
     &cmd_unpack_help},
    {"ls", cmd_ls, "list a table's entries with their metadata, as ls -l",
     &cmd_ls_help},
    {"merge", cmd_merge, "merge tables into one, later tables winning",
     &cmd_merge_help},
    {"info", cmd_info, "show a table's statistics", &cmd_info_help},
    {"verify", cmd_verify, "check every byte of tables", &cmd_verify_help},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static void main_usage(FILE *to) {
  fprintf(to, "Usage: sst COMMAND [OPTION]... [ARG]...\n"
              "Commands:");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(to, " %s", commands[i].name);
  fprintf(to, "\nTry 'sst --help' for more information.\n");
}

static void main_help(void) {
  printf(
      "NAME\n"
      "    sst - build, query and check SSTable files\n"
      "\n"
      "SYNOPSIS\n"
      "    sst COMMAND [OPTION]... [ARG]...\n"
      "    sst help [COMMAND]\n"
      "    sst --help | --version\n"
      "\n"
      "DESCRIPTION\n"
      "    An SSTable is an immutable file of unique keys in bytewise order,\n"
      "    each with a value, and an index to find a key quickly.\n"
      "\n"
      "    The commands that read tables (get, scan, dump, info, verify, ls,\n"
      "    unpack and the inputs of merge) take an http://, https:// or\n"
      "    s3://BUCKET/KEY URL in place of a file: the table is read with\n"
      "    HTTP range requests, its footer and index in one request, only\n"
      "    the bytes needed after (for s3://, see sstfs --help).\n"
      "\n"
      "COMMANDS\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    printf("    %-8s %s\n", commands[i].name, commands[i].summary);
  printf("\n"
         "    sst COMMAND --help describes a command.\n"
         "\n"
         "EXIT STATUS\n"
         "    0 on success, 1 on failure, 2 on a usage error.\n"
         "\n"
         "EXAMPLES\n"
         "    sst build -o users.sstable users.csv\n"
         "    sst get users.sstable alice\n"
         "    sst scan users.sstable --prefix al --keys-only\n"
         "    sst pack site/ site.sstable && sst unpack site.sstable copy/\n"
         "    sst ls site.sstable css/\n");
}

static int main_help_command(int argc, char **argv) {
  if (argc < 3) {
    main_help();
    return EXIT_OK;
  }
  const command *c = find_command(argv[2]);
  if (c == NULL) {
    fprintf(stderr, "sst help: unknown command '%s'\n", argv[2]);
    main_usage(stderr);
    return EXIT_USAGE;
  }
  print_help(c, stdout);
  return EXIT_OK;
}

int main(int argc, char **argv) {
  /* A closed pipe (sst dump t | head) shows up as EPIPE, which ends the
   * output quietly, rather than as a signal. */
  signal(SIGPIPE, SIG_IGN);
  if (!isatty(STDOUT_FILENO))
    setvbuf(stdout, NULL, _IOFBF, (size_t)1 << 20);
  opterr = 0;
  if (argc < 2) {
    main_usage(stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    main_help();
    return EXIT_OK;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf("sst (sstfs) %s (table format %d)\n", SST_VERSION_STRING,
           SST_FORMAT_VERSION);
    return EXIT_OK;
  }
  if (strcmp(name, "help") == 0)
    return main_help_command(argc, argv);
  const command *c = find_command(name);
  if (c == NULL) {
    fprintf(stderr, "sst: unknown command '%s'\n", name);
    main_usage(stderr);
    return EXIT_USAGE;
  }
  return c->run(c, argc - 1, argv + 1);
}
