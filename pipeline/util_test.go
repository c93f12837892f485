package pipeline_test

import (
	"slices"
	"strings"

	"github.com/insitu-data/insitu/pipeline"
)

func slicesSortFunc(fs []pipeline.Failure) {
	slices.SortFunc(fs, func(a, b pipeline.Failure) int { return strings.Compare(a.Name.String(), b.Name.String()) })
}
