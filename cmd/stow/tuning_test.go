package main

import (
	"errors"
	"reflect"
	"testing"
)

func TestResticTuningArgs(t *testing.T) {
	tests := []struct {
		name    string
		tuning  resticTuning
		env     map[string]string
		want    []string
		wantErr bool
	}{
		{name: "defaults pass nothing", want: nil},
		{name: "flags", tuning: resticTuning{readConcurrency: 4, packSizeMiB: 64, compression: "off"},
			want: []string{"--read-concurrency", "4", "--pack-size", "64", "--compression", "off"}},
		{name: "env fills unset flags", tuning: resticTuning{packSizeMiB: 32},
			env:  map[string]string{envReadConcurrency: "8", envPackSize: "4", envCompression: "max"},
			want: []string{"--read-concurrency", "8", "--pack-size", "32", "--compression", "max"}},
		{name: "negative concurrency", tuning: resticTuning{readConcurrency: -1}, wantErr: true},
		{name: "pack size too small", tuning: resticTuning{packSizeMiB: 2}, wantErr: true},
		{name: "pack size too large", env: map[string]string{envPackSize: "129"}, wantErr: true},
		{name: "env not a number", env: map[string]string{envReadConcurrency: "many"}, wantErr: true},
		{name: "unknown compression", tuning: resticTuning{compression: "zstd"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.tuning.args(func(k string) string { return tt.env[k] })
			if tt.wantErr {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != 2 {
					t.Fatalf("want a usage error, got %v (args %q)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("args = %q, want %q", got, tt.want)
			}
		})
	}
}
