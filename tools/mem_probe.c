/* Measures what opening an image and reading one region really cost, next to what the reader
 * predicts, so the cost model can be checked against the codecs rather than guessed:
 *
 *   mem_probe FILE [LEVEL X Y W H [MIN_W MIN_H]]
 *
 * Prints one line: the high-water growth of opening (KB), the predicted cost of the read (KB),
 * the measured growth of the read (KB: this process's peak plus the peak of any decoding child,
 * the JPEG 2000 reader decodes in one), and the read's status. Without a region it reads a
 * 256 px tile at the top left of the smallest level at least 256 px across. Build it from a
 * Release tree: sanitizers inflate resident memory. */
#include "image/reader.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static long status_kb(const char *field)
{
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current resident size, so the next peak is this step's alone. */
static void reset_peak(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1)
            perror("clear_refs");
        close(fd);
    }
}

int main(int argc, char **argv)
{
    struct ts_reader *r;
    struct ts_err err = {0};
    struct ts_read_req q = {0};
    struct ts_image img = {0};
    struct rusage ru;
    size_t cost = 0;

    if (argc != 2 && argc != 7 && argc != 9) {
        fprintf(stderr, "usage: %s FILE [LEVEL X Y W H [MIN_W MIN_H]]\n", argv[0]);
        return 2;
    }
    reset_peak();
    long base = status_kb("VmRSS");
    int rc = ts_reader_open(argv[1], &r, &err);
    long open_kb = status_kb("VmHWM") - base;
    if (rc) {
        printf("%s open=%ldKB status=%s (%s)\n", argv[1], open_kb, ts_status_name(rc), err.msg);
        return 0;
    }
    if (argc >= 7) {
        q.level = (uint32_t)strtoul(argv[2], NULL, 10);
        q.x = (uint32_t)strtoul(argv[3], NULL, 10);
        q.y = (uint32_t)strtoul(argv[4], NULL, 10);
        q.w = (uint32_t)strtoul(argv[5], NULL, 10);
        q.h = (uint32_t)strtoul(argv[6], NULL, 10);
        q.min_w = argc == 9 ? (uint32_t)strtoul(argv[7], NULL, 10) : q.w;
        q.min_h = argc == 9 ? (uint32_t)strtoul(argv[8], NULL, 10) : q.h;
    } else {
        q.level = 0;
        for (uint32_t l = 1; l < r->info.nlevels; l++)
            if (r->info.levels[l].width >= 256 && r->info.levels[l].height >= 256)
                q.level = l;
        const struct ts_level *lv = &r->info.levels[q.level];
        q.w = q.min_w = lv->width < 256 ? lv->width : 256;
        q.h = q.min_h = lv->height < 256 ? lv->height : 256;
    }
    int crc = ts_reader_cost(r, &q, &cost, &err);
    if (crc)
        cost = SIZE_MAX;
    /* A forked decoder starts out with some of this process's pages (not all: fork leaves
     * file mappings to fault in again), so its growth is measured from an idle child's peak. */
    pid_t idle = fork();
    if (idle == 0)
        _exit(0);
    if (idle > 0)
        waitpid(idle, NULL, 0);
    getrusage(RUSAGE_CHILDREN, &ru);
    long child_base = ru.ru_maxrss;
    if (getenv("MEM_PROBE_COST_ONLY")) {
        printf("%s %ux%u level %u (%u,%u %ux%u): open=%ldKB cost=%zuKB\n", argv[1], r->info.width,
               r->info.height, q.level, q.x, q.y, q.w, q.h, open_kb,
               cost == SIZE_MAX ? SIZE_MAX : cost >> 10);
        ts_reader_close(r);
        return 0;
    }
    reset_peak();
    base = status_kb("VmRSS");
    rc = ts_reader_read(r, &q, &img, &err);
    long read_kb = status_kb("VmHWM") - base;
    getrusage(RUSAGE_CHILDREN, &ru);
    long child_kb = ru.ru_maxrss - child_base;
    /* The child decodes into a mapping shared with this process: count those pages once. */
    if (child_kb > 0 && rc == TS_OK)
        child_kb -= (long)((img.stride * img.height) >> 10);
    if (child_kb < 0)
        child_kb = 0;
    printf("%s %ux%u level %u (%u,%u %ux%u): open=%ldKB cost=%zuKB read=%ldKB (self %ld + child "
           "%ld) status=%s%s%s\n",
           argv[1], r->info.width, r->info.height, q.level, q.x, q.y, q.w, q.h, open_kb,
           cost == SIZE_MAX ? SIZE_MAX : cost >> 10, read_kb + child_kb, read_kb, child_kb,
           ts_status_name(rc), rc ? ": " : "", rc ? err.msg : "");
    ts_image_free(&img);
    ts_reader_close(r);
    return 0;
}
