/*
 * nfsd_billing_test.c - the billing lines' files rotate daily: the name
 * of the file of a line is the UTC day of the end of its period
 * (nfsd_billing_file_name), whatever the local time zone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nfsd/nfsd.h"
#include "t/unit/tap.h"

static void
name_is(uint64_t t, const char *want)
{
	char buf[64];

	nfsd_billing_file_name(t, buf, sizeof(buf));
	CHECK(strcmp(buf, want) == 0, "%llu -> %s (%s)", (unsigned long long)t,
	      want, buf);
}

int
main(void)
{
	/* a zone far from UTC must not move the day */
	setenv("TZ", "Pacific/Kiritimati", 1);
	tzset();
	name_is(0, "billing-1970-01-01.jsonl");
	name_is(86399, "billing-1970-01-01.jsonl");
	name_is(86400, "billing-1970-01-02.jsonl");
	/* the last line of a day, and the first of the next */
	name_is(1796687999, "billing-2026-12-07.jsonl");
	name_is(1796688000, "billing-2026-12-08.jsonl");
	name_is(1709164800, "billing-2024-02-29.jsonl"); /* a leap day */
	name_is(1709251199, "billing-2024-02-29.jsonl");
	name_is(1709251200, "billing-2024-03-01.jsonl");
	return tap_done();
}
