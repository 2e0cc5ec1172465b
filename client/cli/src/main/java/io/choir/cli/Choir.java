package io.choir.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Choir is the `choir` command: the server, the cluster helpers and the key-value client commands.
 * Exit codes: 0 ok, 1 not found or CAS failed, 2 usage error, 3 unavailable or timeout, 4 other errors.
 */
@Command(
    name = "choir",
    mixinStandardHelpOptions = true,
    versionProvider = Choir.Version.class,
    description = "Choir: a replicated key-value store over IP multicast.",
    subcommands = {
      ServerCommand.class,
      ClusterCommand.class,
      KeygenCommand.class,
      KvCommands.Put.class,
      KvCommands.Get.class,
      KvCommands.Delete.class,
      KvCommands.Cas.class,
      KvCommands.Scan.class,
      StatusCommand.class,
      io.choir.cli.bench.BenchCommand.class,
      TokenCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Choir implements Runnable {
  public static final int EXIT_OK = 0;
  public static final int EXIT_NOT_FOUND = 1;
  public static final int EXIT_USAGE = 2;
  public static final int EXIT_UNAVAILABLE = 3;
  public static final int EXIT_ERROR = 4;
  /** The replicas denied the request (access file, token) or TLS could not be set up: not executed. */
  public static final int EXIT_DENIED = 5;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
  }

  /** Builds the command line with every subcommand and its programmatic options. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Choir());
    ServerCommand.addSettingOptions(cl.getSubcommands().get("server").getCommandSpec());
    cl.setExitCodeExceptionMapper(t -> t instanceof CommandLine.ParameterException ? EXIT_USAGE : EXIT_ERROR);
    return cl;
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** Version from the jar manifest, or "dev". */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Choir.class.getPackage().getImplementationVersion();
      return new String[] {"choir " + (v == null ? "dev" : v)};
    }
  }
}
