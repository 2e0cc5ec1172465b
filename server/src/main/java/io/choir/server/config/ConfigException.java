package io.choir.server.config;

/** ConfigException names a bad setting and says why it is refused. */
public final class ConfigException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final String key;

  public ConfigException(String key, String reason) {
    super(key == null ? reason : "setting '" + key + "': " + reason);
    this.key = key;
  }

  /** The setting at fault, or null when the problem is not one setting's (an unreadable file). */
  public String key() {
    return key;
  }
}
