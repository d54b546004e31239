#include <stdio.h>
#include <string.h>
#include "hotplex.h"

int main(void) {
    hotplex_detector *d = NULL;
    if (hotplex_detector_new(&d) != HOTPLEX_STATUS_OK) {
        fprintf(stderr, "%s\n", hotplex_last_error_message());
        return 1;
    }
    const char *cmd = "rm -rf /";
    hotplex_verdict *v = NULL;
    if (hotplex_detector_check_command(d, cmd, strlen(cmd), &v) == HOTPLEX_STATUS_OK) {
        printf("blocked=%d level=%d rule=%s\n", hotplex_verdict_blocked(v),
               (int)hotplex_verdict_level(v), hotplex_verdict_rule_id(v));
        hotplex_verdict_free(v);
    }
    hotplex_detector_free(d);
    return 0;
}
