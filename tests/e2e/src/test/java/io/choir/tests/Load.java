package io.choir.tests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Load reports the machine's load averages, printed with timing figures (the machine is shared). */
final class Load {
  private Load() {}

  /** "load average 1/5/15 min: a b c on N cores", or why it is unknown. */
  static String now() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return "load average " + f[0] + " " + f[1] + " " + f[2] + " on " + Runtime.getRuntime().availableProcessors()
          + " cores";
    } catch (IOException e) {
      return "load unknown (" + e.getMessage() + ")";
    }
  }
}
