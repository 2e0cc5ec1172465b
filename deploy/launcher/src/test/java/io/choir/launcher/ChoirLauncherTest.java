package io.choir.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.choir.cli.Choir;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class ChoirLauncherTest {
  @Test
  void shouldOfferEverySubcommandOfTheOneChoirCommandInItsHelpOrder() {
    assertEquals(List.of("server", "cluster", "keygen", "put", "get", "delete", "cas", "scan", "watch", "status",
        "member", "lease", "bench", "token", "help"), List.copyOf(ChoirLauncher.commandLine().getSubcommands().keySet()));
  }

  @Test
  void shouldLeaveTheClientOnlyCommandWithoutTheServerSideSubcommands() {
    assertEquals(List.of("put", "get", "delete", "cas", "scan", "watch", "status", "member", "lease", "help"),
        List.copyOf(Choir.commandLine().getSubcommands().keySet()));
  }

  @Test
  void shouldExitWithTheUsageCodeOnBadArgumentsAndWithoutASubcommand() {
    CommandLine cl = ChoirLauncher.commandLine();
    cl.setErr(new PrintWriter(new StringWriter()));
    assertEquals(Choir.EXIT_USAGE, cl.execute("server", "--no-such-flag"));
    assertEquals(Choir.EXIT_USAGE, cl.execute());
  }

  @Test
  void shouldTakeSettingsAsServerFlags() {
    CommandLine server = ChoirLauncher.commandLine().getSubcommands().get("server");
    for (String flag : List.of("--config", "--print-config", "--rejoin", "--replica-id", "--data-dir")) {
      assertNotNull(server.getCommandSpec().findOption(flag), flag);
    }
  }
}
