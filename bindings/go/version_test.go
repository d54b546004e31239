package hotplex_test

import (
	"testing"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// The library linked in the source tree is built from the same workspace.
func TestModuleVersionIsTheLinkedLibrarys(t *testing.T) {
	if hotplex.ModuleVersion != hotplex.Version() {
		t.Errorf("ModuleVersion %q, linked library %q", hotplex.ModuleVersion, hotplex.Version())
	}
}
