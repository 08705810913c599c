package v1beta1

import "testing"

func TestSetHostStats(t *testing.T) {
	var st RestoreSessionStatus
	st.SetHostStats(HostRestoreStats{Hostname: "a", Phase: HostRunning})
	st.SetHostStats(HostRestoreStats{Hostname: "b", Phase: HostRunning})
	st.SetHostStats(HostRestoreStats{Hostname: "a", Phase: HostSucceeded})
	if len(st.Stats) != 2 || st.HostStats("a").Phase != HostSucceeded || st.HostStats("b").Phase != HostRunning || st.HostStats("c") != nil {
		t.Fatalf("stats = %+v", st.Stats)
	}
	var bt BackupTargetStatus
	bt.SetHostStats(HostBackupStats{Hostname: "a", Phase: HostFailed})
	bt.SetHostStats(HostBackupStats{Hostname: "a", Phase: HostSucceeded})
	if len(bt.Stats) != 1 || bt.Stats[0].Phase != HostSucceeded {
		t.Fatalf("stats = %+v", bt.Stats)
	}
}
