#include "config.h"
#include "t/unit/nfsd_test.h"
int
main(void)
{
	return 77;
}
