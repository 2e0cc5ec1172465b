package io.choir.server.config;

import java.util.List;

/**
 * TestSettings declares the settings that only tests set: fault injection and deliberate protocol bugs.
 * They live apart from the production ones in {@link ServerConfig} so that an operator reading those
 * never meets them; every key starts with test_, `--print-config` marks them and the README lists them
 * in a table of their own. Left at their defaults, each does nothing.
 */
public final class TestSettings {
  private TestSettings() {
  }

  public static final Setting<Integer> TEST_MULTICAST_LOSS_PERCENT = Setting.whole("test_multicast_loss_percent",
      0, 0, 100, Unit.PERCENT,
      "TEST ONLY: drop this share of received multicast datagrams, to exercise NACK repair.").forTestsOnly();
  public static final Setting<String> TEST_FAULT_FILE = Setting.text("test_fault_file", "",
      "TEST ONLY: a file listing peer ids to cut off (both ways), re-read every 100 ms.").forTestsOnly();
  public static final Setting<String> TEST_BREAK_PROTOCOL = Setting.oneOf("test_break_protocol", "off",
      List.of("off", "local-reads", "commit-alone", "ack-before-fsync", "stale-lease"),
      "TEST ONLY, breaks the protocol on purpose so tests can show their checks catch it: `local-reads`"
          + " answers every read (linearizable ones on backups too) from local state; `commit-alone`"
          + " acknowledges a write once the primary alone has it on disk; `ack-before-fsync` acknowledges log"
          + " writes before they are fsynced (and restarts as if they were), so a power loss loses"
          + " acknowledged writes; `stale-lease` gives the primary a lease of twenty election timeouts that"
          + " CheckQuorum does not end, so a cut-off primary answers stale linearizable reads. `off` is the"
          + " only safe value.").forTestsOnly();

  /** Every test-only setting, in documentation order. */
  static final List<Setting<?>> ALL = List.of(TEST_MULTICAST_LOSS_PERCENT, TEST_FAULT_FILE, TEST_BREAK_PROTOCOL);
}
