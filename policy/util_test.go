package policy_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains[T comparable](list []T, s T) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func stringOf(v any) string  { return fmt.Sprintf("%v %+v %s", v, v, v) }
func stringOfV(v any) string { return fmt.Sprintf("%#v", v) }
