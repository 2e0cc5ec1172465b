package io.choir.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Choir is the client half of the `choir` command: the key-value commands and status, which need only
 * the client library (no server, no RocksDB). The launcher (deploy/launcher, {@code ChoirLauncher})
 * adds the server-side commands to these; this class also runs alone ({@link #main}). It owns the exit
 * codes every subcommand returns: 0 ok, 1 not found or CAS failed, 2 usage error (or a request refused:
 * invalid, too large, a membership change the primary refused), 3 unavailable or timeout (an unknown
 * outcome among them), 4 other errors, 5 denied.
 */
@Command(
    name = "choir",
    mixinStandardHelpOptions = true,
    versionProvider = Choir.Version.class,
    description = "Choir client: the key-value commands, status and membership of a Choir cluster.")
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

  /**
   * The client commands by name, in the order `choir --help` lists them, each made only when a command
   * line needs it: one CLI call builds the picocli model of its own command only (see
   * {@link #commandLine(String...)}).
   */
  private static final Map<String, Supplier<Object>> CLIENT_COMMANDS = clientCommands();

  private static Map<String, Supplier<Object>> clientCommands() {
    Map<String, Supplier<Object>> m = new LinkedHashMap<>();
    m.put("put", KvCommands.Put::new);
    m.put("get", KvCommands.Get::new);
    m.put("delete", KvCommands.Delete::new);
    m.put("cas", KvCommands.Cas::new);
    m.put("scan", KvCommands.Scan::new);
    m.put("watch", WatchCommand::new);
    m.put("status", StatusCommand::new);
    m.put("member", MemberCommands::commandLine);
    m.put("lease", LeaseCommands::commandLine);
    return m;
  }

  /** Builds the client-only command line: the client commands and help. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Choir());
    addClientCommands(cl);
    cl.addSubcommand(new CommandLine.HelpCommand());
    cl.setExitCodeExceptionMapper(Choir::exitCodeOf);
    return cl;
  }

  /**
   * The command line that runs args: when args start with a client command, one with that command
   * only (picocli's model of every other command is never built, which a short-lived process notices),
   * else the whole client command line.
   */
  public static CommandLine commandLine(String... args) {
    if (!isClientCommand(args)) {
      return commandLine();
    }
    CommandLine cl = new CommandLine(new Choir());
    cl.addSubcommand(CLIENT_COMMANDS.get(args[0]).get());
    cl.setExitCodeExceptionMapper(Choir::exitCodeOf);
    return cl;
  }

  /** Whether args start with the name of a client command (put, get, ..., member). */
  public static boolean isClientCommand(String... args) {
    return args.length > 0 && CLIENT_COMMANDS.containsKey(args[0]);
  }

  /**
   * Adds the client commands (put, get, delete, cas, scan, watch, status, member, lease), in the order `choir --help`
   * lists them, to a command line: this one's or the launcher's.
   */
  public static void addClientCommands(CommandLine cl) {
    CLIENT_COMMANDS.values().forEach(c -> cl.addSubcommand(c.get()));
  }

  /** The exit code of an exception no subcommand handled: a usage error for bad arguments, else 4. */
  public static int exitCodeOf(Throwable t) {
    return t instanceof CommandLine.ParameterException ? EXIT_USAGE : EXIT_ERROR;
  }

  public static void main(String[] args) {
    System.exit(commandLine(args).execute(args));
  }

  /** Version from the jar manifest, or "dev". */
  public static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Choir.class.getPackage().getImplementationVersion();
      return new String[] {"choir " + (v == null ? "dev" : v)};
    }
  }
}
