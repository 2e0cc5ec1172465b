package io.choir.jepsen;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.BiFunction;

/**
 * DiskFaults are the storage faults of the catalogue ({@link Nemeses}): a replica's own data file
 * system ({@link DataDisks}) filled to the last block, freed again on stop.
 */
final class DiskFaults {
  private DiskFaults() {}

  /** all are the disk faults in catalogue order. */
  static List<Nemesis> all() {
    List<Nemesis> out = new ArrayList<>();
    out.add(new DiskFullFault("disk-full", (c, r) -> Targets.pick(c.nodes(), r)));
    out.add(new DiskFullFault("disk-full-primary", Targets::primaryOrRandom));
    return out;
  }

  /**
   * DiskFullFault fills a node's data file system to the last block ({@link DataDisks#fill}). The
   * replica meets ENOSPC at its next log write, fails stop (StorageStage: "storage failed; stopping the
   * replica") and its container exits; stop deletes the filler and starts a stopped replica again.
   */
  private record DiskFullFault(String name, BiFunction<Cluster, Random, Cluster.Node> victim) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) throws Exception {
      DataDisks disks = cluster.dataDisks().orElseThrow(() -> new IllegalStateException(
          "the cluster has no data disks of its own (they need root, loop devices and mkfs.ext2; see DataDisks)"));
      Cluster.Node n = victim.apply(cluster, random);
      long before = disks.freeBytes(n.name());
      long filled = disks.fill(n.name());
      long left = disks.freeBytes(n.name());
      long filledAtMs = System.currentTimeMillis();
      String detail = "filled the data disk of " + n.name() + " (" + (disks.bytes() >> 20) + " MiB ext2): "
          + mib(filled) + " of filler, " + left + " bytes left of " + mib(before) + "; freed (and the replica"
          + " restarted if it stopped) on stop";
      return new Active() {
        private String outcome = "stopped";

        @Override
        public List<String> nodes() {
          return List.of(n.name());
        }

        @Override
        public String detail() {
          return detail;
        }

        @Override
        public void stop() throws Exception {
          boolean running = cluster.isRunning(n);
          String what;
          if (running) {
            what = n.name() + " was still running on the full disk";
          } else {
            long exit = cluster.exitCode(n);
            String finished = Docker.state(n.containerId()).getFinishedAt();
            long afterMs = -1;
            try {
              afterMs = Instant.parse(finished).toEpochMilli() - filledAtMs;
            } catch (RuntimeException e) {
              // unknown format: leave it out
            }
            what = n.name() + " had stopped (exit code " + exit + (afterMs >= 0 ? ", " + afterMs + " ms after the fill" : "")
                + ")";
          }
          long freed = disks.free(n.name());
          boolean restarted = false;
          if (!cluster.isRunning(n)) { // also when it was still dying at the first look
            cluster.restart(n);
            restarted = true;
          }
          outcome = what + "; freed " + mib(freed) + (restarted ? "; restarted it" : "");
        }

        @Override
        public String stopDetail() {
          return outcome;
        }
      };
    }
  }

  static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
  }
}
