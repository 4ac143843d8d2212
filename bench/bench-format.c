/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "bench-format.h"
#include "bench.h"
#include "macro.h"

const char *fmt_bytes(char *buf, size_t size, double bytes) {
        static const char *const suffix[] = { "B", "K", "M", "G", "T" };
        unsigned i = 0;

        if (isnan(bytes))
                return "-";
        while (bytes >= 1024 && i + 1 < ELEMENTSOF(suffix)) {
                bytes /= 1024;
                i++;
        }
        if (i == 0)
                snprintf(buf, size, "%.0fB", bytes);
        else
                snprintf(buf, size, "%.1f%s", bytes, suffix[i]);
        return buf;
}

/* A size given on the command line, exactly: 256M, 1G, 64G. */
const char *fmt_size(char *buf, size_t size, uint64_t bytes) {
        if (bytes >= GIB && bytes % GIB == 0)
                snprintf(buf, size, "%" PRIu64 "G", bytes / GIB);
        else if (bytes % MIB == 0)
                snprintf(buf, size, "%" PRIu64 "M", bytes / MIB);
        else
                snprintf(buf, size, "%" PRIu64 "B", bytes);
        return buf;
}

const char *fmt_usec(char *buf, size_t size, double usec) {
        if (isnan(usec))
                return "-";
        if (usec < 10 * 1000.0)
                snprintf(buf, size, "%.1fms", usec / 1000.0);
        else if (usec < 1000 * 1000.0)
                snprintf(buf, size, "%.0fms", usec / 1000.0);
        else
                snprintf(buf, size, "%.2fs", usec / 1e6);
        return buf;
}

const char *fmt_usec_fine(char *buf, size_t size, double usec) {
        if (isnan(usec))
                return "-";
        if (usec < 1000)
                snprintf(buf, size, "%.0fus", usec);
        else
                snprintf(buf, size, "%.1fms", usec / 1000);
        return buf;
}

const char *fmt_rate(char *buf, size_t size, double gibps) {
        if (isnan(gibps))
                return "-";
        snprintf(buf, size, "%.2f", gibps);
        return buf;
}

const char *fmt_pct(char *buf, size_t size, double part, double whole) {
        if (isnan(part) || isnan(whole) || whole <= 0)
                return "-";
        snprintf(buf, size, "%.0f%%", part / whole * 100.0);
        return buf;
}

void json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

void json_number(FILE *f, double v, Unit u) {
        if (isnan(v))
                fputs("null", f);
        else if (u == UNIT_GIBPS || u == UNIT_RATIO)
                fprintf(f, "%.4f", v);
        else if (u == UNIT_USEC_FRACTION)
                fprintf(f, "%.3f", v);
        else
                fprintf(f, "%.0f", v);
}
