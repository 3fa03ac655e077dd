/**
 * WeChat events (MsgType `event`) as agents see them: a readable line for the
 * system envelope (code 102), and the key that tells a retried event from a new one.
 *
 * @module
 */

type Fields = Readonly<Record<string, string>>;

function v(f: Fields, key: string): string {
  return f[key]?.trim() ?? "";
}

/** A readable line for an event, in Chinese as the agents' console is, naming the WeChat user. */
export function eventText(f: Fields, user: string): string {
  const key = v(f, "EventKey");
  switch (v(f, "Event")) {
    case "subscribe":
      return key.startsWith("qrscene_")
        ? `用户 ${user} 扫码关注了公众号（场景 ${key.slice("qrscene_".length)}）`
        : `用户 ${user} 关注了公众号`;
    case "unsubscribe":
      return `用户 ${user} 取消关注了公众号`;
    case "SCAN":
      return `用户 ${user} 扫描了场景二维码（场景 ${key}）`;
    case "LOCATION":
      return `用户 ${user} 上报了位置：纬度 ${v(f, "Latitude")}，经度 ${v(f, "Longitude")}，精度 ${v(f, "Precision")}`;
    case "CLICK":
      return `用户 ${user} 点击了菜单（${key}）`;
    case "VIEW":
      return `用户 ${user} 打开了菜单链接 ${key}`;
    case "kf_create_session":
      return `客服 ${v(f, "KfAccount")} 接入了与用户 ${user} 的会话`;
    case "kf_close_session":
      return `客服 ${v(f, "KfAccount")} 关闭了与用户 ${user} 的会话`;
    case "kf_switch_session":
      return `用户 ${user} 的会话从客服 ${v(f, "FromKfAccount")} 转接给了 ${v(f, "ToKfAccount")}`;
    case "TEMPLATESENDJOBFINISH":
      return `模板消息 ${v(f, "MsgID")} 发送给用户 ${user} 的结果：${v(f, "Status")}`;
    default:
      return `用户 ${user} 触发了事件 ${v(f, "Event") || "(未知)"}`;
  }
}

/**
 * The id of an event. Events have no MsgId (TEMPLATESENDJOBFINISH has `MsgID`), so
 * a retry is known by FromUserName + CreateTime + Event; the hub adds the user.
 */
export function eventId(f: Fields, createTime: string): string {
  const msgID = v(f, "MsgID");
  return msgID !== "" ? `tpl:${msgID}` : `ev:${createTime.trim()}:${v(f, "Event")}`;
}
