package io.choir.launcher;

import io.choir.cli.Choir;
import io.choir.server.security.ClusterKeys;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * KeygenCommand writes a fresh cluster key file (32 random bytes from the JDK's SecureRandom, one
 * line) that every member then names in cluster_key_file.
 */
@Command(name = "keygen", description = "Write a fresh cluster key file (for cluster_key_file), readable by"
    + " its owner only.", mixinStandardHelpOptions = true)
final class KeygenCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--out", paramLabel = "FILE", required = true, description = "Where to write the key file.")
  Path out;

  @Option(names = "--key-id", paramLabel = "ID", defaultValue = "1",
      description = "Key id 1..255 (use a new id for each key of a rotation). Default: ${DEFAULT-VALUE}")
  int keyId;

  @Option(names = "--force", description = "Overwrite an existing file.")
  boolean force;

  @Override
  public Integer call() throws IOException {
    if (Files.exists(out) && !force) {
      spec.commandLine().getErr().println("choir keygen: " + out + " exists (use --force to overwrite)");
      return Choir.EXIT_USAGE;
    }
    ClusterKeys keys;
    try {
      keys = ClusterKeys.generate(keyId, new SecureRandom());
    } catch (IllegalArgumentException e) {
      spec.commandLine().getErr().println("choir keygen: " + e.getMessage());
      return Choir.EXIT_USAGE;
    }
    keys.write(out);
    spec.commandLine().getOut().println("wrote key " + keyId + " to " + out);
    return Choir.EXIT_OK;
  }
}
