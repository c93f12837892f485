//go:build !linux

package main

import (
	"context"
	"errors"
)

// groupedFloor needs syncfs(2), which only Linux has.
func groupedFloor(context.Context, string, string, int, *result) error {
	return errors.New("the grouped floor needs Linux (syncfs)")
}
