/**
 * Every environment variable kefu reads, grouped as docs/configuration.md groups them: what `kefu --help` lists and
 * what the near-miss warnings compare unknown names with. Each module reads its own variables; this is the
 * operator's index of them (a test checks that every variable read in src/ is here and in the docs).
 *
 * @module
 */

/** One variable: its name, its default as the docs write it ("" when none), and what it does in a few words. */
export interface Variable {
  name: string;
  default: string;
  about: string;
}

/** A group of variables, as in docs/configuration.md. */
export interface VariableGroup {
  title: string;
  variables: Variable[];
}

const v = (name: string, fallback: string, about: string): Variable => ({ name, default: fallback, about });

/** The groups, in the order of the docs. */
export const VARIABLE_GROUPS: readonly VariableGroup[] = [
  {
    title: "Server",
    variables: [
      v("PORT", "1234", "HTTP and WebSocket port; 0 picks a free one"),
      v("HOST", "0.0.0.0", "address to listen on"),
      v("LOG_LEVEL", "info", "debug, info, warn, error or silent (JSON lines on stdout)"),
      v("CONFIG_FILE", "", "JSON file: several accounts, the agents, PC hooks, WXBot accounts"),
      v("PUBLIC_URL", "", "where agents reach kefu (https://kefu.example.com): absolute media URLs"),
      v("PUSH_REPLY_URL", "", "where replies to HTTP-push users are POSTed"),
      v("PUSH_TOKEN", "", "Bearer token the push endpoints require (>= 16 characters)"),
      v("PUSH_OPEN", "0", "1: with sign-in on and no PUSH_TOKEN, pushes are taken from anyone all the same"),
      v("HEARTBEAT_SECONDS", "30", "heartbeat envelope interval to every agent socket"),
      v("IDLE_TIMEOUT_SECONDS", "60", "a socket peer that does not answer pings is dropped"),
    ],
  },
  {
    title: "Store",
    variables: [
      v("STORE", "sqlite", "sqlite (a file under DATA_DIR), memory (nothing kept) or postgres (DATABASE_URL)"),
      v("DATA_DIR", "./data", "where kefu.db, its lock and the media files live"),
      v("MEDIA_DIR", "DATA_DIR/media", "where media files live; several nodes need one they all share"),
      v("DATABASE_URL", "", "postgres://user:password@host:5432/db, required with STORE=postgres"),
      v("DATABASE_POOL_SIZE", "10", "connections each process keeps to PostgreSQL (1 to 1000)"),
      v("GROUP_COMMIT_MS", "2", "a commit waits this long for company; 0 commits each message alone"),
      v("STORE_SYNC", "NORMAL", "SQLite synchronous: NORMAL survives a crash, FULL a power loss"),
      v("RETENTION_DAYS", "30", "messages older than this are swept hourly (unread ones stay)"),
      v("REDELIVER_PAGE", "1000", "unacknowledged messages read per page when an agent connects"),
      v("REDIS_URL", "", "redis://host:6379 for several nodes (cluster mode, coming)"),
      v("NODE_ID", "host-pid", "this process's name among several nodes"),
    ],
  },
  {
    title: "Sign-in",
    variables: [
      v("AGENT_SECRET", "", "turns agent sign-in on (>= 16 characters; agents in CONFIG_FILE)"),
      v("AUTH_TOKEN_SECONDS", "86400", "life of an agent's token"),
      v("AUTH_MAX_SKEW_SECONDS", "300", "a signed token request further from the clock is refused"),
    ],
  },
  {
    title: "Official Account",
    variables: [
      v("WECHAT_TOKEN", "", "the Token of the account's server configuration (turns /wechat on)"),
      v("WECHAT_APPID", "", "AppID; required with an AES key and for custom replies"),
      v("WECHAT_APPSECRET", "", "AppSecret, for the access_token"),
      v("WECHAT_ENCODING_AES_KEY", "", "EncodingAESKey (43 characters): compatible and safe mode"),
      v("WECHAT_ENCRYPT_MODE", "safe with a key", "plaintext, compatible (both) or safe (encrypted posts only)"),
      v("WECHAT_COMPANY_ID", "", "company_id put on this account's messages"),
      v("WECHAT_API_BASE", "https://api.weixin.qq.com", "where WeChat's API is"),
      v("WECHAT_TOKEN_MODE", "token", "token or stable_token"),
      v("WECHAT_MAX_SKEW_SECONDS", "300", "requests with an older timestamp are refused"),
      v("WECHAT_REPLAY_GUARD", "on", "a signed (timestamp, nonce) is taken once; off only for load generators"),
      v("WECHAT_AUTO_REPLY", "", "passive text reply when no agent is online"),
      v("WECHAT_REPLY_MODE", "custom", "custom (customer-service API) or passive (in WeChat's answer)"),
      v("WECHAT_PASSIVE_HOLD_MS", "14000", "passive mode: how long WeChat's request waits for a reply"),
      v("WECHAT_PASSIVE_ATTEMPT_MS", "4500", "passive mode: one attempt of WeChat's (it retries)"),
    ],
  },
  {
    title: "PC hook",
    variables: [
      v("HOOK_API_URL", "http://127.0.0.1:8888/api/", "the hook's HTTP API (turns the channel on)"),
      v("HOOK_CALLBACK_URL", "ws://127.0.0.1:$PORT/pc_hook/ws", "what kefu registers with the hook"),
      v("HOOK_CALLBACK_PATH", "/pc_hook/ws", "where kefu serves the hook's socket"),
      v("HOOK_CALLBACK_TOKEN", "", "token the hook must dial with (>= 16 characters)"),
      v("HOOK_OPEN", "0", "1: with sign-in on and no HOOK_CALLBACK_TOKEN, the hook's socket is open all the same"),
      v("HOOK_WXID", "", "the logged-in account's wxid (else learned)"),
      v("HOOK_SECRET_KEY", "", "the hook's API secret"),
      v("HOOK_REGISTER", "on", "off: the callback is set by hand on the hook"),
      v("HOOK_SEND_TEXT_TYPE", "10009", "the hook's send-text call"),
      v("HOOK_SEND_IMAGE_TYPE", "10010", "the hook's send-image call"),
      v("HOOK_SEND_FILE_TYPE", "10012", "the hook's send-file call"),
      v("HOOK_SEND_USER_FIELD", "userName", "the receiver's field"),
      v("HOOK_SEND_CONTENT_FIELD", "msgContent", "the text's field"),
      v("HOOK_SEND_PATH_FIELD", "filePath", "a file path's field"),
      v("HOOK_PING_SECONDS", "5", "pings on the hook's socket"),
      v("HOOK_TIMEOUT_MS", "10000", "longest wait for one API call"),
      v("HOOK_CHECK_SECONDS", "30", "how often the registration is checked"),
      v("HOOK_RETRY_MAX_SECONDS", "60", "longest wait before registering again"),
    ],
  },
  {
    title: "WXBot",
    variables: [
      v("WXBOT_KEY", "", "the platform account key (turns the channel on)"),
      v("WXBOT_WS_URL", "ws://api.whosecard.com:19095", "the sync socket"),
      v("WXBOT_API_BASE", "https://api.whosecard.com", "the HTTP API"),
      v("WXBOT_WXID", "", "the account's wxid"),
      v("WXBOT_TOKEN", "", "the Token that sends as it"),
      v("WXBOT_COMPANY_ID", "", "company_id put on its messages"),
      v("WXBOT_RECONNECT_MS", "10000", "wait before reconnecting"),
      v("WXBOT_AUTH_TIMEOUT_MS", "30000", "wait for the auth answer"),
      v("WXBOT_TIMEOUT_MS", "30000", "one API call's timeout"),
      v("WXBOT_MAX_RETRIES", "3", "retries of a call the platform did not carry out"),
      v("WXBOT_RETRY_MIN_MS", "1000", "shortest wait before a retry"),
      v("WXBOT_RETRY_MAX_MS", "3000", "longest wait before a retry"),
      v("WXBOT_VOICE_PATH", "/wxapi/pc/message/sendVoice", "the voice endpoint"),
      v("WXBOT_VIDEO_PATH", "/wxapi/pc/message/sendVideo", "the video endpoint"),
      v("WXBOT_IMAGE_FORMAT", "seed", "seed, data_uri or raw"),
    ],
  },
  {
    title: "Media",
    variables: [
      v("FFMPEG_PATH", "ffmpeg", "the ffmpeg that converts voice notes and videos"),
      v("MEDIA_TIMEOUT_SECONDS", "30", "longest the work on one file may take"),
      v("MEDIA_MAX_BYTES", "10485760", "largest file kept"),
      v("MEDIA_URL_SECONDS", "3600", "life of a signed media link"),
      v("MEDIA_ALLOWED_HOSTS", "mmbiz.qpic.cn,*.qpic.cn,…", "hosts users' files may come from"),
    ],
  },
  {
    title: "Limits",
    variables: [
      v("MAX_BODY_BYTES", "262144", "largest HTTP body"),
      v("MAX_WS_MESSAGE_BYTES", "65536", "largest frame an agent may send"),
      v("MAX_HELD_PER_AGENT", "1000", "live messages queued behind a session catching up"),
      v("MAX_HELD_TOTAL", "", "no longer used (accepted, ignored): waiting messages wait in the store"),
      v("MAX_SOCKETS_PER_AGENT", "8", "tabs one agent may hold open"),
      v("MAX_BUFFERED_BYTES", "4194304", "unsent bytes a socket may hold"),
      v("REASSIGN_AFTER_SECONDS", "30", "a user whose agent is offline this long goes to another"),
      v("AGENT_CAPACITY", "0", "open conversations per agent before new users wait (0: no limit)"),
      v("ASSIGN_POLICY", "fewest", "who a new user goes to: fewest (open) or round_robin"),
      v("DEDUPE_WINDOW", "", "no longer used (accepted, ignored): the store's unique key catches repeats"),
    ],
  },
  {
    title: "Metrics",
    variables: [
      v("METRICS_TOKEN", "", "turns /metrics on; Prometheus sends it as a Bearer token (>= 16 characters)"),
    ],
  },
  {
    title: "Simulator (kefu simulate)",
    variables: [
      v("SIM_PORT", "9000", "the WeChat simulator's port"),
      v("SIM_HOST", "127.0.0.1", "the simulators' address"),
      v("SIM_WEBHOOK_URL", "http://127.0.0.1:1234/wechat", "kefu's webhook"),
      v("SIM_MODE", "safe with a key", "plaintext, compatible or safe"),
      v("SIM_ACCOUNT_ID", "gh_kefu_simulator", "the account's gh_… id"),
      v("SIM_TIMEOUT_MS", "5000", "WeChat's wait for an answer"),
      v("SIM_HOOK", "", "1: play a PC hook"),
      v("SIM_HOOK_PORT", "8888", "the PC hook's port"),
      v("SIM_HOOK_HOST", "127.0.0.1", "the PC hook's address"),
      v("SIM_HOOK_WXID", "", "the PC hook's account"),
      v("SIM_HOOK_ANSWERS", "seed", "seed or wrapped"),
      v("SIM_WXBOT_PORT", "19095", "the WXBot platform's port"),
    ],
  },
];

/** Every variable's name. */
export const KNOWN_VARIABLES: readonly string[] = VARIABLE_GROUPS.flatMap((g) => g.variables.map((x) => x.name));
