package io.choir.tests;

import io.choir.server.security.ClusterKeys;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.SecureRandom;

/**
 * ClusterKeyFile gives a process test's cluster a fresh key, so that its replicas run as a secure
 * cluster does: peer TCP (streams, state transfers) proven with the key and sealed.
 */
final class ClusterKeyFile {
  private ClusterKeyFile() {}

  /** Writes a fresh key file into dir (owner-only) and returns the config line that names it. */
  static String yaml(Path dir) {
    Path file = dir.toAbsolutePath().resolve("cluster.key");
    try {
      ClusterKeys.generate(1, new SecureRandom()).write(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return "cluster_key_file: " + file + "\n";
  }
}
