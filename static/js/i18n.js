// Every string the agent reads, in Chinese (the agents' language, the default) and English; the same keys in both
// (tests/static/i18n_test.ts). The choice is kept in localStorage; <html lang> follows it.

const LANG_KEY = "kefu.lang";

const zh = {
  "app.title": "kefu 客服",
  "app.sub": "客服工作台",
  "lang.switch": "EN",
  "lang.title": "Switch to English",

  "auth.id": "客服 ID",
  "auth.password": "密码",
  "auth.signIn": "登录",
  "auth.signOut": "退出",
  "auth.off": "未开启登录：任何能访问 kefu 的人都可以冒充任意客服（请设置 AGENT_SECRET）",
  "auth.who": "客服 {agent}，登录有效至 {until}",
  "auth.refused": "已退出：kefu 拒绝了登录凭证（{reason}）。",
  "auth.cannotDetect": "无法向 kefu 确认是否开启了登录（{path}）：{reason}",
  "auth.cannotSignIn": "无法登录：{reason}",
  "auth.keptInvalid": "已退出：保存的登录已失效（{reason}）。",
  "auth.cannotCheck": "已退出：无法验证保存的登录（{reason}）。",
  "auth.expired": "已退出：登录已于 {at} 过期，请重新登录。",
  "auth.signInFirst": "请先登录。",
  "auth.wrongPassword": "客服 ID 或密码不正确。",
  "auth.tooMany": "登录失败次数过多，请 {s} 秒后再试。",
  "auth.badRequest": "请填写客服 ID 和密码。",
  "auth.offNow": "kefu 未开启登录，请刷新页面。",
  "auth.failedStatus": "登录失败（HTTP {status}），请稍后再试。",
  "auth.network": "无法连接 kefu，请检查网络后再试。",
  "auth.expiredNow": "已退出：登录已过期，请重新登录。",
  "auth.revoked": "已退出：登录已被注销（在其他窗口退出，或被管理员注销），请重新登录。",
  "auth.invalid": "已退出：登录凭证无效，请重新登录。",
  "auth.required": "请先登录。",
  "auth.mismatch": "已退出：登录凭证属于另一位客服，请重新登录。",
  "auth.refusedPlain": "已退出：kefu 拒绝了登录凭证，请重新登录。",
  "auth.signedOutElsewhere": "已在其他窗口退出登录。",

  "connect.connect": "连接",
  "connect.disconnect": "断开",
  "connect.needId": "请先输入客服 ID。",
  "status.disconnected": "未连接",
  "status.checking": "正在验证保存的登录…",
  "status.signedOut": "已退出",
  "status.connecting": "正在以客服 {agent} 连接…",
  "status.open": "已连接：客服 {agent}",
  "status.reconnecting": "连接已断开（代码 {code}{reason}），{s} 秒后重连",
  "status.closed": "连接已断开（代码 {code}{reason}）",
  "status.closedWith": "连接以代码 {code} 关闭",
  "heartbeat.last": "最近心跳 {time}",
  "heartbeat.waiting": "心跳每 30 秒一次",
  "heartbeat.title": "kefu 每 30 秒发送一次心跳（代码 101）",

  "bell.on": "提醒已开启：新会话、等待接入的用户和后台新消息会响铃并弹出通知（点击关闭）",
  "bell.onDenied": "提醒已开启（仅声音：浏览器拒绝了通知权限）",
  "bell.off": "提醒已关闭（点击开启声音和桌面通知）",

  "toast.dismiss": "点击关闭",

  "search.placeholder": "搜索联系人、备注或消息",
  "search.contacts": "联系人",
  "search.messages": "消息",
  "search.none": "没有找到“{q}”",
  "search.failed": "搜索失败：{reason}",

  "queue.title": "等待接入",
  "queue.refresh": "刷新等待队列",
  "queue.take": "接入",
  "queue.notify": "等待接入：{name}",
  "queue.cannotLoad": "无法加载等待队列：{reason}",
  "queue.takenAlready": "{name} 已被其他客服接入",
  "queue.cannotTake": "无法接入：{reason}",

  "filter.all": "全部",
  "filter.unread": "未读",
  "filter.waiting": "待回复",
  "filter.resolved": "已解决",

  "contacts.empty": "暂无联系人。微信用户的消息会出现在这里。",
  "contacts.emptyFilter": "没有符合筛选条件的联系人。",
  "contacts.cannotLoad": "无法加载联系人列表：{reason}",
  "contact.unread": "{n} 条未读",
  "contact.mine": "我：{text}",
  "contact.draft": "[草稿]",
  "contact.resolved": "已解决",
  "contact.open": "进行中",
  "contact.replyFailed": "发送失败",
  "contact.replyFailedTitle": "最后一条回复没有发出",

  "channel.wx_official_account": "公众号",
  "channel.pc_hook": "个人号 · PC",
  "channel.wxbot": "个人号 · WXBot",
  "channel.http_push": "HTTP",

  "type.image": "[图片]",
  "type.voice": "[语音]",
  "type.video": "[视频]",
  "type.shortvideo": "[视频]",
  "type.location": "[位置]",
  "type.link": "[链接]",
  "type.miniprogrampage": "[小程序]",

  "badge.image": "图片",
  "badge.voice": "语音",
  "badge.video": "视频",
  "badge.shortvideo": "小视频",
  "badge.location": "位置",
  "badge.link": "链接",
  "badge.miniprogrampage": "小程序",
  "badge.file": "文件",

  "server.failed": "kefu 未能完成这次操作",

  "fail.window": "回复没有发出：回复窗口已关闭，请等用户再次发消息后再回复",
  "fail.admin": "回复没有发出：账号余额或接口权限不足，请联系管理员",
  "fail.noRoute": "回复没有发出：此渠道无法回复这位联系人",
  "fail.unsupported": "回复没有发出：此渠道不支持发送这类回复",
  "fail.gone": "回复没有发出：联系人已不存在（已删除或被封），请不要再发",
  "fail.unfollowed": "回复没有发出：用户已取消关注",
  "fail.notYours": "回复没有发出：这位联系人已由其他客服接待",
  "fail.later": "回复暂时没有发出，请稍后重发",
  "fail.media": "文件没有发出，请重新上传后再发",
  "fail.generic": "回复没有发出",
  "fail.resend": "重发",
  "fail.resendTitle": "把这条回复作为新消息再发一次",

  "system.title": "系统消息",
  "system.unrecognised": "无法识别的消息：{raw}",
  "system.notJson": "无法解析的消息（不是 JSON）：{raw}",

  "label.user": "用户·{tag}",
  "label.group": "群聊·{tag}",

  "event.someone": "用户",
  "event.subscribe": "{who} 关注了公众号",
  "event.subscribeScene": "{who} 扫码关注了公众号（场景 {scene}）",
  "event.unsubscribe": "{who} 取消关注了公众号",
  "event.scan": "{who} 扫描了场景二维码（场景 {scene}）",
  "event.click": "{who} 点击了菜单（{key}）",
  "event.view": "{who} 打开了菜单链接 {url}",
  "event.location": "{who} 上报了位置",
  "event.scancode": "{who} 通过菜单扫了码",
  "event.photo": "{who} 通过菜单发了图片",
  "event.miniprogram": "{who} 通过菜单打开了小程序",
  "event.kfCreate": "微信客服接入了与 {who} 的会话",
  "event.kfClose": "微信客服关闭了与 {who} 的会话",
  "event.kfSwitch": "{who} 的会话在微信客服中被转接",
  "event.template": "发给 {who} 的模板消息有了发送结果",
  "event.other": "{who} 触发了微信事件 {event}",
  "event.unknown": "{who} 触发了微信事件",

  "sim.title": "模拟微信用户",
  "sim.from": "FromUserName（用户）",
  "sim.to": "ToUserName（客服；留空自动分配）",
  "sim.send": "以用户身份发送 → POST /send",
  "sim.sending": "发送中…",
  "sim.failed": "请求失败：{reason}",

  "conv.select": "请选择联系人",
  "conv.loadEarlier": "加载更早的消息",
  "conv.newBelow": "新消息 ↓",
  "conv.cannotLoadHistory": "无法加载 {id} 的历史消息：{reason}",

  "day.today": "今天",
  "day.yesterday": "昨天",
  "weekday.0": "周日",
  "weekday.1": "周一",
  "weekday.2": "周二",
  "weekday.3": "周三",
  "weekday.4": "周四",
  "weekday.5": "周五",
  "weekday.6": "周六",
  "time.justNow": "刚刚",
  "time.minutesAgo": "{n}分钟前",
  "time.yesterday": "昨天",
  "left.seconds": "{s}秒",
  "left.minutes": "{m}分",
  "left.hoursMinutes": "{h}小时{m}分",

  "window.open.message": "还可回复 {n} 条 · 剩余 {left}",
  "window.open.event": "关注/菜单/扫码后：还可回复 {n} 条 · 剩余 {left}",
  "window.expired": "用户超过48小时未发消息，微信不允许回复",
  "window.quotaMessage": "用户上次发消息后已回复5条，需等用户再次发消息才能回复",
  "window.quotaEvent": "用户关注/点击菜单/扫码后1分钟内已回复3条，需等用户发消息才能回复",
  "window.eventExpired": "用户关注/点击菜单/扫码已超过1分钟且未发消息，微信不允许回复",
  "window.never": "用户还没有发过消息，微信不允许主动回复",
  "window.closed": "回复窗口已关闭",

  "status.msg.pending": "发送中",
  "status.msg.sent": "已发送",
  "status.msg.passive": "已发送（被动回复）",
  "status.msg.failed": "发送失败",
  "status.msg.unconfirmed": "未确认",

  "msg.location": "位置",
  "msg.map": "地图",

  "media.open": "打开文件",
  "media.retry": "重试",
  "media.retrying": "重试中…",
  "media.notConnected": "未连接：无法重新获取文件",
  "media.enlarge": "点击放大",
  "media.image": "图片",
  "media.imageFailed": "图片无法显示",
  "media.voice": "语音",
  "media.video": "视频",
  "media.cannotLoad": "文件无法加载或播放",
  "media.cannotPlay": "无法播放：{why}",
  "media.notConverted": "文件未能转换：{reason}",
  "media.notFetched": "文件未能转存：{reason}",
  "lightbox.open": "新标签页打开",
  "lightbox.close": "关闭 (Esc)",

  "reply.placeholder": "输入回复…（Enter 发送，Shift+Enter 换行）",
  "reply.send": "发送",
  "reply.closedPlaceholder": "暂时无法回复",
  "reply.fileTitle": "发送图片、语音（mp3/amr）或视频（mp4）",
  "reply.notConnected": "未连接：回复没有发出。",
  "reply.unconfirmedDetail": "服务器确认回复前连接已断开；确认可能稍后到达",
  "reply.fileType": "无法发送 {name}：微信只接受图片、语音（mp3/amr）和视频（mp4）",
  "reply.cannotUpload": "无法上传 {name}：{reason}",

  "actions.details": "资料",
  "actions.transfer": "转接",
  "actions.resolve": "标记已解决",
  "actions.reopen": "重新打开",
  "actions.release": "退回队列",
  "actions.releaseTitle": "放回等待队列，由其他客服接入",

  "details.title": "联系人资料",
  "details.close": "关闭资料",
  "details.id": "用户 ID（OpenID）",
  "details.name": "微信昵称",
  "details.channel": "渠道",
  "details.account": "账号",
  "details.status": "状态",
  "details.displayName": "备注名",
  "details.note": "备注",
  "details.save": "保存",
  "details.saved": "已保存",

  "transfer.titleWho": "转接会话：{name}",
  "transfer.to": "转接给",
  "transfer.note": "备注（可选，接手的客服可见）",
  "transfer.ok": "转接",
  "transfer.loading": "正在加载客服列表…",
  "transfer.none": "没有可转接的客服",
  "transfer.agent": "客服 {id} · {state} · {n} 个会话",
  "transfer.online": "在线",
  "transfer.offline": "离线",
  "transfer.choose": "请选择要转接的客服",
  "transfer.done": "已转接给客服 {to}",
  "release.titleWho": "退回等待队列：{name}",
  "release.hint": "用户回到等待队列，任何在线客服都可以接入。",
  "release.ok": "退回队列",
  "release.done": "已退回等待队列",
  "dialog.cancel": "取消",

  "workflow.you": "你",
  "workflow.agent": "客服 {id} ",
  "workflow.note": "：{note}",
  "workflow.transferred": "{from}将会话转接给了{to}",
  "workflow.resolved": "{by}将会话标记为已解决",
  "workflow.reopened": "{by}重新打开了会话",
  "workflow.reopenedByUser": "用户发来新消息，会话已重新打开",
  "workflow.taken": "{by}接入了会话",
  "workflow.updated": "{by}更新了联系人资料",
  "workflow.queued": "{by}将会话退回了等待队列",
  "workflow.cannotRelease": "无法退回队列：{reason}",
  "workflow.cannotResolve": "无法标记为已解决：{reason}",
  "workflow.cannotReopen": "无法重新打开：{reason}",
  "workflow.cannotSave": "无法保存资料：{reason}",
  "workflow.cannotTransfer": "无法转接：{reason}",
  "workflow.cannotLoadAgents": "无法加载客服列表：{reason}",
};

const en = {
  "app.title": "kefu",
  "app.sub": "Agent workplace",
  "lang.switch": "中文",
  "lang.title": "切换到中文",

  "auth.id": "Agent id",
  "auth.password": "Password",
  "auth.signIn": "Sign in",
  "auth.signOut": "Sign out",
  "auth.off": "Sign-in is off: anyone who reaches kefu can act as any agent (set AGENT_SECRET)",
  "auth.who": "agent {agent}, signed in until {until}",
  "auth.refused": "Signed out: kefu refused the sign-in ({reason}).",
  "auth.cannotDetect": "Cannot ask kefu whether sign-in is on ({path}): {reason}",
  "auth.cannotSignIn": "Cannot sign in: {reason}",
  "auth.keptInvalid": "Signed out: the kept sign-in is no longer valid ({reason}).",
  "auth.cannotCheck": "Signed out: cannot check the kept sign-in ({reason}).",
  "auth.expired": "Signed out: your sign-in expired at {at}. Sign in again.",
  "auth.signInFirst": "Sign in first.",
  "auth.wrongPassword": "Wrong agent id or password.",
  "auth.tooMany": "Too many failed sign-ins: try again in {s} s.",
  "auth.badRequest": "Enter your agent id and password.",
  "auth.offNow": "Sign-in is off on this kefu: reload the page.",
  "auth.failedStatus": "Cannot sign in (HTTP {status}): try again later.",
  "auth.network": "Cannot reach kefu: check the network and try again.",
  "auth.expiredNow": "Signed out: your sign-in expired. Sign in again.",
  "auth.revoked":
    "Signed out: your sign-in was ended (signed out in another tab, or by an administrator). Sign in again.",
  "auth.invalid": "Signed out: the sign-in is not valid. Sign in again.",
  "auth.required": "Sign in first.",
  "auth.mismatch": "Signed out: the sign-in is another agent's. Sign in again.",
  "auth.refusedPlain": "Signed out: kefu refused the sign-in. Sign in again.",
  "auth.signedOutElsewhere": "Signed out in another tab.",

  "connect.connect": "Connect",
  "connect.disconnect": "Disconnect",
  "connect.needId": "Enter an agent id first.",
  "status.disconnected": "disconnected",
  "status.checking": "checking the kept sign-in…",
  "status.signedOut": "signed out",
  "status.connecting": "connecting as agent {agent}…",
  "status.open": "connected as agent {agent}",
  "status.reconnecting": "closed (code {code}{reason}); reconnecting in {s} s",
  "status.closed": "closed (code {code}{reason})",
  "status.closedWith": "the connection closed with code {code}",
  "heartbeat.last": "last heartbeat {time}",
  "heartbeat.waiting": "heartbeat every 30 s",
  "heartbeat.title": "kefu sends a heartbeat (code 101) every 30 s",

  "bell.on":
    "Alerts on: a tone and a notification for a new conversation, a user waiting, or a message while hidden (click to mute)",
  "bell.onDenied": "Alerts on (tone only: the browser refused notifications)",
  "bell.off": "Alerts off (click for a tone and desktop notifications)",

  "toast.dismiss": "click to dismiss",

  "search.placeholder": "Search contacts, notes or messages",
  "search.contacts": "Contacts",
  "search.messages": "Messages",
  "search.none": "Nothing found for “{q}”",
  "search.failed": "Search failed: {reason}",

  "queue.title": "Waiting for an agent",
  "queue.refresh": "Refresh the queue",
  "queue.take": "Take",
  "queue.notify": "Waiting for an agent: {name}",
  "queue.cannotLoad": "Cannot load the queue: {reason}",
  "queue.takenAlready": "Another agent has taken {name} already",
  "queue.cannotTake": "Cannot take: {reason}",

  "filter.all": "All",
  "filter.unread": "Unread",
  "filter.waiting": "Waiting",
  "filter.resolved": "Resolved",

  "contacts.empty": "No contacts yet. Messages from WeChat users appear here.",
  "contacts.emptyFilter": "No contact matches this filter.",
  "contacts.cannotLoad": "Cannot load the contact list: {reason}",
  "contact.unread": "{n} unread",
  "contact.mine": "Me: {text}",
  "contact.draft": "[Draft]",
  "contact.resolved": "Resolved",
  "contact.open": "Open",
  "contact.replyFailed": "Not sent",
  "contact.replyFailedTitle": "The last reply was not sent",

  "channel.wx_official_account": "Official Account",
  "channel.pc_hook": "Personal · PC",
  "channel.wxbot": "Personal · WXBot",
  "channel.http_push": "HTTP",

  "type.image": "[image]",
  "type.voice": "[voice]",
  "type.video": "[video]",
  "type.shortvideo": "[video]",
  "type.location": "[location]",
  "type.link": "[link]",
  "type.miniprogrampage": "[mini program]",

  "badge.image": "image",
  "badge.voice": "voice",
  "badge.video": "video",
  "badge.shortvideo": "short video",
  "badge.location": "location",
  "badge.link": "link",
  "badge.miniprogrampage": "mini program",
  "badge.file": "file",

  "server.failed": "kefu could not do that",

  "fail.window": "Not sent: the reply window is closed. Wait for the user to write again, then reply",
  "fail.admin": "Not sent: the account's balance or API permission is not enough. Tell your administrator",
  "fail.noRoute": "Not sent: this channel cannot reply to this contact",
  "fail.unsupported": "Not sent: this channel cannot send this kind of reply",
  "fail.gone": "Not sent: the contact no longer exists (deleted or banned). Do not send again",
  "fail.unfollowed": "Not sent: the user has unfollowed the account",
  "fail.notYours": "Not sent: another agent looks after this contact now",
  "fail.later": "Not sent yet: try again in a minute",
  "fail.media": "The file was not sent: upload it again",
  "fail.generic": "The reply was not sent",
  "fail.resend": "Resend",
  "fail.resendTitle": "Send this reply again as a new message",

  "system.title": "System",
  "system.unrecognised": "unrecognised frame: {raw}",
  "system.notJson": "unreadable frame (not JSON): {raw}",

  "label.user": "User·{tag}",
  "label.group": "Group·{tag}",

  "event.someone": "The user",
  "event.subscribe": "{who} followed the account",
  "event.subscribeScene": "{who} followed the account by scanning a QR code (scene {scene})",
  "event.unsubscribe": "{who} unfollowed the account",
  "event.scan": "{who} scanned a QR code (scene {scene})",
  "event.click": "{who} clicked the menu ({key})",
  "event.view": "{who} opened the menu link {url}",
  "event.location": "{who} shared a location",
  "event.scancode": "{who} scanned a code from the menu",
  "event.photo": "{who} sent a picture from the menu",
  "event.miniprogram": "{who} opened a mini program from the menu",
  "event.kfCreate": "WeChat customer service took the conversation with {who}",
  "event.kfClose": "WeChat customer service closed the conversation with {who}",
  "event.kfSwitch": "The conversation with {who} was transferred in WeChat customer service",
  "event.template": "A template message to {who} has its delivery result",
  "event.other": "{who} triggered the WeChat event {event}",
  "event.unknown": "{who} did something in WeChat",

  "sim.title": "Simulate a WeChat user",
  "sim.from": "FromUserName (user)",
  "sim.to": "ToUserName (agent; empty = auto-assign)",
  "sim.send": "Send as user → POST /send",
  "sim.sending": "sending…",
  "sim.failed": "request failed: {reason}",

  "conv.select": "Select a contact",
  "conv.loadEarlier": "Load earlier messages",
  "conv.newBelow": "New messages ↓",
  "conv.cannotLoadHistory": "Cannot load the history of {id}: {reason}",

  "day.today": "Today",
  "day.yesterday": "Yesterday",
  "weekday.0": "Sun",
  "weekday.1": "Mon",
  "weekday.2": "Tue",
  "weekday.3": "Wed",
  "weekday.4": "Thu",
  "weekday.5": "Fri",
  "weekday.6": "Sat",
  "time.justNow": "just now",
  "time.minutesAgo": "{n} min ago",
  "time.yesterday": "Yesterday",
  "left.seconds": "{s} s",
  "left.minutes": "{m} min",
  "left.hoursMinutes": "{h} h {m} min",

  "window.open.message": "{n} replies left · {left} left",
  "window.open.event": "After a follow/menu/scan: {n} replies left · {left} left",
  "window.expired": "The user has not written for 48 hours: WeChat does not allow a reply",
  "window.quotaMessage": "5 replies were sent since the user's last message: wait for the user to write again",
  "window.quotaEvent": "3 replies were sent in the minute after a follow/menu/scan: wait for the user to write",
  "window.eventExpired":
    "The follow/menu/scan was over a minute ago and the user has not written: WeChat does not allow a reply",
  "window.never": "The user has not written yet: WeChat does not allow a reply",
  "window.closed": "Reply window closed",

  "status.msg.pending": "sending",
  "status.msg.sent": "sent",
  "status.msg.passive": "passive reply",
  "status.msg.failed": "failed",
  "status.msg.unconfirmed": "unconfirmed",

  "msg.location": "Location",
  "msg.map": "Map",

  "media.open": "Open the file",
  "media.retry": "Retry",
  "media.retrying": "Retrying…",
  "media.notConnected": "Not connected: cannot ask for the file again",
  "media.enlarge": "Click to enlarge",
  "media.image": "Image",
  "media.imageFailed": "The image could not be loaded",
  "media.voice": "Voice",
  "media.video": "Video",
  "media.cannotLoad": "the file could not be loaded or played",
  "media.cannotPlay": "Cannot play: {why}",
  "media.notConverted": "The file was not converted: {reason}",
  "media.notFetched": "The file could not be fetched: {reason}",
  "lightbox.open": "Open in a new tab",
  "lightbox.close": "Close (Esc)",

  "reply.placeholder": "Reply… (Enter sends, Shift+Enter for a new line)",
  "reply.send": "Send",
  "reply.closedPlaceholder": "Cannot reply now",
  "reply.fileTitle": "Send an image, a voice file (mp3/amr) or a video (mp4)",
  "reply.notConnected": "Not connected: the reply was not sent.",
  "reply.unconfirmedDetail": "the connection closed before the server confirmed the reply; its answer may still come",
  "reply.fileType": "Cannot send {name}: WeChat takes images, voice (mp3/amr) and video (mp4)",
  "reply.cannotUpload": "Cannot upload {name}: {reason}",

  "actions.details": "Details",
  "actions.transfer": "Transfer",
  "actions.resolve": "Resolve",
  "actions.reopen": "Reopen",
  "actions.release": "Back to queue",
  "actions.releaseTitle": "Put the user back in the waiting queue for another agent to take",

  "details.title": "Contact details",
  "details.close": "Close details",
  "details.id": "User id (OpenID)",
  "details.name": "WeChat name",
  "details.channel": "Channel",
  "details.account": "Account",
  "details.status": "Status",
  "details.displayName": "Display name",
  "details.note": "Note",
  "details.save": "Save",
  "details.saved": "Saved",

  "transfer.titleWho": "Transfer the conversation with {name}",
  "transfer.to": "Transfer to",
  "transfer.note": "Note (optional, the next agent sees it)",
  "transfer.ok": "Transfer",
  "transfer.loading": "Loading agents…",
  "transfer.none": "No agent to transfer to",
  "transfer.agent": "Agent {id} · {state} · conversations: {n}",
  "transfer.online": "online",
  "transfer.offline": "offline",
  "transfer.choose": "Choose an agent to transfer to",
  "transfer.done": "Transferred to agent {to}",
  "release.titleWho": "Put {name} back in the waiting queue",
  "release.hint": "The user waits in the queue again; any agent online can take them.",
  "release.ok": "Back to queue",
  "release.done": "Back in the waiting queue",
  "dialog.cancel": "Cancel",

  "workflow.you": "you",
  "workflow.agent": "{id}",
  "workflow.note": ": {note}",
  "workflow.transferred": "{from} transferred the conversation to {to}",
  "workflow.resolved": "{by} resolved the conversation",
  "workflow.reopened": "{by} reopened the conversation",
  "workflow.reopenedByUser": "The user wrote again: the conversation is open again",
  "workflow.taken": "{by} took the conversation",
  "workflow.updated": "{by} updated the contact's details",
  "workflow.queued": "{by} put the conversation back in the waiting queue",
  "workflow.cannotRelease": "Cannot put back in the queue: {reason}",
  "workflow.cannotResolve": "Cannot resolve: {reason}",
  "workflow.cannotReopen": "Cannot reopen: {reason}",
  "workflow.cannotSave": "Cannot save the details: {reason}",
  "workflow.cannotTransfer": "Cannot transfer: {reason}",
  "workflow.cannotLoadAgents": "Cannot load the agents: {reason}",
};

export const tables = { zh, en };
export const LANGS = ["zh", "en"];

let lang = "zh";
const listeners = new Set();

/** The language at start: the agent's choice if made, else Chinese, unless the browser puts English first. */
export function initialLang(stored) {
  // Chinese first, whatever the browser's language: the agents are Chinese customer-service staff, and a desktop
  // set to English is no sign an agent reads it better. English is the switch away, and remembered.
  return LANGS.includes(stored) ? stored : "zh";
}

export function getLang() {
  return lang;
}

/** `key` in the current language with `{name}` replaced from `params`; `fallback` (or the key) when unknown. */
export function t(key, params = {}, fallback = key) {
  const s = tables[lang][key] ?? zh[key];
  if (s === undefined) return fallback;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** The static text of the page: elements with data-i18n (text), data-i18n-placeholder, -title, -aria-label. */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
}

/** Switch language: kept for the next visit, the page's text and everything drawn redone. */
export function setLang(next, remember = true) {
  lang = LANGS.includes(next) ? next : "zh";
  if (remember) localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  translatePage();
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** At start: the kept choice or the browser's. */
export function startLang() {
  setLang(initialLang(localStorage.getItem(LANG_KEY)), false);
}
