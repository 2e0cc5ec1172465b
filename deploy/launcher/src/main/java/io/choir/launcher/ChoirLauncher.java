package io.choir.launcher;

import io.choir.cli.Choir;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * ChoirLauncher is the one `choir` command that deploy/bin/choir and the image run: the commands that
 * need the server (server, cluster, keygen, token), the benchmark (bench) and the client commands of
 * {@link Choir}, which it borrows so that they are declared once. Exit codes are {@link Choir}'s: 0 ok,
 * 1 not found or CAS failed, 2 usage error, 3 unavailable or timeout, 4 other errors, 5 denied.
 */
@Command(
    name = "choir",
    mixinStandardHelpOptions = true,
    versionProvider = Choir.Version.class,
    description = "Choir: a replicated key-value store over IP multicast.")
public final class ChoirLauncher implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
  }

  /** Builds the command line with every subcommand, in the order `choir --help` lists them. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new ChoirLauncher());
    cl.addSubcommand(new ServerCommand());
    cl.addSubcommand(new ClusterCommand());
    cl.addSubcommand(new KeygenCommand());
    Choir.addClientCommands(cl);
    cl.addSubcommand(new BenchCommand());
    cl.addSubcommand(new TokenCommand());
    cl.addSubcommand(new CommandLine.HelpCommand());
    ServerCommand.addSettingOptions(cl.getSubcommands().get("server").getCommandSpec());
    cl.setExitCodeExceptionMapper(Choir::exitCodeOf);
    return cl;
  }

  /**
   * Runs one command. A client command (get, put, ...) runs on {@link Choir}'s command line of that
   * command alone, so that a CLI call never builds the server's picocli model nor loads its settings.
   */
  public static void main(String[] args) {
    CommandLine cl = Choir.isClientCommand(args) ? Choir.commandLine(args) : commandLine();
    System.exit(cl.execute(args));
  }
}
