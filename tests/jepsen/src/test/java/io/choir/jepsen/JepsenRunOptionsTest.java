package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The run's options and command line without Docker: workloads known, replay command, usage text. */
class JepsenRunOptionsTest {
  private static JepsenRun.Options defaults() {
    return JepsenRun.Options.defaults(3, "partition-halves", Duration.ofSeconds(30), 1);
  }

  @Test
  void shouldAcceptBothWorkloadsAndRejectOthers() {
    assertEquals("register", defaults().workload());
    assertEquals("set", defaults().withWorkload("set").workload());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> defaults().withWorkload("bank"));
    assertTrue(e.getMessage().contains("register, set"), e.getMessage());
  }

  @Test
  void shouldReplayTheWorkload() {
    assertEquals("tests/jepsen/run.sh --nodes 3 --workload set --nemesis partition-halves --time-limit 30 --seed 1",
        JepsenRun.replayCommand(defaults().withWorkload("set")));
    assertTrue(JepsenRun.replayCommand(defaults()).contains("--workload register"));
  }

  @Test
  void shouldDeriveTheSetSettingsFromTheRegisterOnes() {
    SetWorkload.Settings s = SetWorkload.Settings.from(RegisterWorkload.Settings.defaults());
    assertEquals(10, s.processes(), "2 keys x 5 threads");
    assertEquals(100, s.opsPerSecond());
    assertEquals(Duration.ofSeconds(2), s.requestTimeout());
  }

  @Test
  void shouldUseTlsUnlessPlaintextIsAsked() {
    JepsenRun.Options d = defaults();
    if (System.getProperty("choir.jepsen.tls") == null) {
      assertTrue(d.tls(), "TLS is the default");
    }
    JepsenRun.Options plain = new JepsenRun.Options(d.nodes(), d.workload(), d.nemesis(), d.timeLimit(), d.seed(),
        d.register(), d.timing(), d.reportBase(), d.image(), d.serverSettings(), d.recoveryTimeout(),
        d.checkTimeout(), d.command(), false);
    assertTrue(JepsenRun.replayCommand(plain).endsWith(" --plaintext"), JepsenRun.replayCommand(plain));
    assertFalse(plain.withWorkload("set").tls(), "withWorkload keeps the security");
    Run run = new Run();
    new CommandLine(run).parseArgs("--plaintext");
    assertTrue(run.plaintext);
    Run tls = new Run();
    new CommandLine(tls).parseArgs("--nodes", "3");
    assertFalse(tls.plaintext, "without --plaintext the clients use TLS");
  }

  @Test
  void shouldListTheSetWorkloadInTheHelp() {
    String usage = new CommandLine(new Run()).getUsageMessage();
    assertTrue(usage.contains("register (read/write/CAS per key), set"), usage);
    assertTrue(usage.contains("watch (") && usage.contains("lease ("), usage);
  }
}
