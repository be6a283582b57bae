#include "config.h"
#include "t/nfs/tharness.h"
int
main(void)
{
	th_skip_all("not written yet");
}
