// Who uses the simulated platform: users (some of them streamers, each with a room), their devices
// and networks. Kept in typed arrays indexed by user or device number, so a population of hundreds
// of thousands costs little memory and no per-event allocation to look up.
import type { DeviceReport } from "../../schemas/types.generated.ts";
import type { Rng } from "./random.ts";

export const FIRST_UID = 100_000_000;
export const FIRST_ROOM_ID = 700_000;

export const PLATFORMS = ["android", "ios", "web"] as const;
export const APP_VERSIONS = ["8.4.1", "8.4.0", "8.3.7", "8.2.9", "7.9.12"];
const APP_VERSION_WEIGHTS = [0.46, 0.22, 0.16, 0.11, 0.05];

export const DEVICE_EMULATOR = 1;
export const DEVICE_ROOTED = 2;
export const DEVICE_JAILBROKEN = 4;
/** A genuine cheap phone or tablet that trips one or two single emulator checks (few sensors, no SIM, on its charger). */
export const DEVICE_CHEAP = 8;
/** A genuine phone whose vendor ROM ships busybox (and sometimes test-keys): not root. */
export const DEVICE_BUSYBOX = 16;

// What a device shows of itself (deviceVariant), so not every emulator or rooted phone shows every sign.
/** An emulator whose build imitates a real phone (model, hardware, release-keys, user build). */
export const EMU_HIDES_BUILD = 1;
/** An emulator reporting a real phone's sensor list. */
export const EMU_HIDES_SENSORS = 2;
/** An emulator with a faked IMEI, IMSI and operator. */
export const EMU_HIDES_TELEPHONY = 4;
/** An emulator with a faked, varying battery. */
export const EMU_HIDES_BATTERY = 8;
const ROOT_SHOWS_SU = 1;
const ROOT_SHOWS_PACKAGE = 2;
const ROOT_SHOWS_MAGISK_DIR = 4;
const ROOT_SHOWS_HOOK = 8;
const CHEAP_FEW_SENSORS = 1;
const CHEAP_NO_TELEPHONY = 2;
const CHEAP_ON_CHARGER = 4;
const BUSYBOX_TEST_KEYS = 1;

interface AndroidModel {
  manufacturer: string;
  brand: string;
  model: string;
  product: string;
  device: string;
  board: string;
  hardware: string;
  os: string[];
}

const ANDROID_MODELS: AndroidModel[] = [
  {
    manufacturer: "Xiaomi",
    brand: "Xiaomi",
    model: "2211133C",
    product: "fuxi",
    device: "fuxi",
    board: "kalama",
    hardware: "qcom",
    os: ["14", "13"],
  },
  {
    manufacturer: "Xiaomi",
    brand: "Redmi",
    model: "23078RKD5C",
    product: "yuechu",
    device: "yuechu",
    board: "mt6895",
    hardware: "mt6895",
    os: ["13"],
  },
  {
    manufacturer: "HUAWEI",
    brand: "HUAWEI",
    model: "ALN-AL00",
    product: "ALN-AL00",
    device: "HWALN",
    board: "ALN",
    hardware: "kirin9000s",
    os: ["12"],
  },
  {
    manufacturer: "OPPO",
    brand: "OPPO",
    model: "PHZ110",
    product: "PHZ110",
    device: "OP5913L1",
    board: "taro",
    hardware: "qcom",
    os: ["14", "13"],
  },
  {
    manufacturer: "vivo",
    brand: "vivo",
    model: "V2309A",
    product: "PD2309",
    device: "PD2309",
    board: "k6985v1_64",
    hardware: "mt6985",
    os: ["14"],
  },
  {
    manufacturer: "HONOR",
    brand: "HONOR",
    model: "PGT-AN10",
    product: "PGT-AN10",
    device: "HNPGT",
    board: "kalama",
    hardware: "qcom",
    os: ["14", "13"],
  },
  {
    manufacturer: "samsung",
    brand: "samsung",
    model: "SM-S9180",
    product: "dm3qzcx",
    device: "dm3q",
    board: "kalama",
    hardware: "qcom",
    os: ["14"],
  },
  {
    manufacturer: "OnePlus",
    brand: "OnePlus",
    model: "PJD110",
    product: "PJD110",
    device: "OP5929L1",
    board: "pineapple",
    hardware: "qcom",
    os: ["14"],
  },
];
const IOS_MODELS = [
  "iPhone15,2",
  "iPhone15,3",
  "iPhone16,1",
  "iPhone16,2",
  "iPhone14,5",
  "iPhone14,2",
  "iPhone13,2",
  "iPhone12,1",
];
const IOS_VERSIONS = ["17.5.1", "17.4.1", "17.2", "16.7.8", "16.6.1", "15.8.2"];

/** What emulators report: the generic builds, goldfish/ranchu/vbox86 hardware, test or dev keys. */
const EMULATORS: AndroidModel[] = [
  {
    manufacturer: "Google",
    brand: "google",
    model: "sdk_gphone64_x86_64",
    product: "sdk_gphone64_x86_64",
    device: "emu64x",
    board: "goldfish_x86_64",
    hardware: "ranchu",
    os: ["13"],
  },
  {
    manufacturer: "Genymotion",
    brand: "generic",
    model: "Samsung Galaxy S10",
    product: "vbox86p",
    device: "vbox86p",
    board: "vbox86",
    hardware: "vbox86",
    os: ["9"],
  },
  {
    manufacturer: "Netease",
    brand: "Android",
    model: "MuMu",
    product: "cancro",
    device: "x86",
    board: "unknown",
    hardware: "mumu",
    os: ["12"],
  },
  {
    manufacturer: "BlueStacks",
    brand: "samsung",
    model: "SM-G965N",
    product: "starlte",
    device: "starlte",
    board: "universal9810",
    hardware: "android_x86",
    os: ["9"],
  },
];

/** Cheap phones and tablets: real hardware, with few sensors or no SIM. */
const CHEAP_MODELS: AndroidModel[] = [
  {
    manufacturer: "Teclast",
    brand: "Teclast",
    model: "P20HD",
    product: "P20HD_EEA",
    device: "P20HD",
    board: "ums512_1h10",
    hardware: "ums512",
    os: ["11"],
  },
  {
    manufacturer: "Xiaomi",
    brand: "Redmi",
    model: "23028RNCAC",
    product: "water",
    device: "water",
    board: "mt6765",
    hardware: "mt6765",
    os: ["13"],
  },
  {
    manufacturer: "ALLDOCUBE",
    brand: "ALLDOCUBE",
    model: "iPlay50",
    product: "iPlay50",
    device: "T1030M",
    board: "ums512_1h10",
    hardware: "ums512",
    os: ["12"],
  },
  {
    manufacturer: "HUAWEI",
    brand: "HUAWEI",
    model: "AGS3-W00D",
    product: "AGS3-W00D",
    device: "HWAGS3",
    board: "AGS3",
    hardware: "hi6250",
    os: ["12"],
  },
];

const REAL_SENSORS = [
  "accelerometer",
  "magnetometer",
  "orientation",
  "gyroscope",
  "light",
  "pressure",
  "proximity",
  "gravity",
  "linear_acceleration",
  "rotation_vector",
  "magnetometer_uncalibrated",
  "game_rotation_vector",
  "gyroscope_uncalibrated",
  "significant_motion",
  "step_detector",
  "step_counter",
  "geomagnetic_rotation_vector",
  "tilt_detector",
  "pick_up_gesture",
  "hinge_angle",
];

/** China's consumer ISPs (rough /16s) and public-cloud ranges where device farms live. */
const HOME_NETS = [
  "36.110",
  "39.144",
  "42.120",
  "58.240",
  "60.10",
  "61.135",
  "101.80",
  "106.120",
  "111.200",
  "112.96",
  "113.108",
  "114.240",
  "115.171",
  "116.228",
  "117.136",
  "120.229",
  "121.35",
  "123.125",
  "124.64",
  "125.118",
  "183.192",
  "223.104",
];
export const DATACENTER_NETS = ["47.100", "121.40", "139.224", "118.89", "106.55"];

const LEGIT_PHONE_PREFIXES = [
  "130",
  "131",
  "132",
  "133",
  "134",
  "135",
  "136",
  "137",
  "138",
  "139",
  "150",
  "151",
  "152",
  "155",
  "156",
  "157",
  "158",
  "159",
  "166",
  "173",
  "176",
  "177",
  "180",
  "181",
  "182",
  "183",
  "185",
  "186",
  "187",
  "188",
  "189",
  "191",
  "198",
  "199",
];
/** Mobile virtual network operators' prefixes: cheap, anonymous numbers, the SMS farms' favourite. */
export const VIRTUAL_PHONE_PREFIXES = ["170", "171", "162", "165", "167"];
/** IoT ranges: numbers meant for devices, which SMS farms also buy. */
export const IOT_PHONE_PREFIXES = ["146", "148", "1440"];

/** Whether a typed number is in a virtual-operator or IoT range. */
export function isVirtualNumber(typed: string): boolean {
  const digits = typed.replace(/\D/g, "").replace(/^(0086|86)(?=1\d{10}$)/, "");
  return [...VIRTUAL_PHONE_PREFIXES, ...IOT_PHONE_PREFIXES].some((p) => digits.startsWith(p));
}

export const CHAT_PHRASES = [
  "主播好美",
  "666",
  "哈哈哈哈哈",
  "来了来了",
  "这首歌好听",
  "晚上好",
  "关注了",
  "求翻牌",
  "主播唱一首吧",
  "🔥🔥🔥",
  "❤️❤️",
  "加油！",
  "太好笑了",
  "第一次来，支持一下",
  "前排",
  "打卡",
  "主播几点下播？",
  "好听好听",
  "hello from 上海",
  "nice 👍",
  '他说"再来一首"',
  "路过",
];
/** Spam and ads: contact details, redirects to other apps, forbidden trades. */
const SPAM_TEMPLATES = [
  "加微信 {wx} 领福利",
  "vx:{wx} 看私密视频",
  "QQ群{qq} 免费送钻石",
  "兼职日结 联系{phone}",
  "低价代充 {url}",
  "点击 {url} 领取红包",
  "博彩平台 注册送88 {url}",
  "裸聊 加{wx}",
  "办证 刷单 联系 {phone}",
];
export const SENSITIVE_WORDS = ["博彩", "裸聊", "办证", "刷单", "代充"];

export class Population {
  users = 0;
  devices = 0;
  readonly uidBase = FIRST_UID;
  // per user
  readonly platform: Uint8Array;
  readonly appVersion: Uint8Array;
  readonly homeIp: string[];
  readonly device: Int32Array;
  readonly balance: Float64Array;
  readonly phone: (string | undefined)[];
  // per device
  readonly deviceId: string[];
  readonly installId: string[];
  readonly deviceModel: Uint8Array;
  readonly deviceOs: Uint8Array;
  readonly deviceFlags: Uint8Array;
  /** Which signs a special device shows or hides (EMU_HIDES_*, and the root, cheap and busybox kinds). */
  readonly deviceVariant: Uint8Array;
  /** 1 once the device has sent a report (its signs are in the data). */
  readonly deviceReported: Uint8Array;
  readonly deviceOwner: Int32Array;
  // streamers: user indices; room k belongs to streamer k
  readonly streamers: Int32Array;
  private readonly versionPick: number[];

  constructor(
    private readonly rng: Rng,
    initialUsers: number,
    streamerCount: number,
    /** Room for users and devices created during the run (registrations, fraud campaigns). */
    extra: number,
  ) {
    const userCap = initialUsers + extra;
    const deviceCap = Math.ceil(initialUsers * 1.2) + extra;
    this.platform = new Uint8Array(userCap);
    this.appVersion = new Uint8Array(userCap);
    this.homeIp = new Array(userCap);
    this.device = new Int32Array(userCap);
    this.balance = new Float64Array(userCap);
    this.phone = new Array(userCap);
    this.deviceId = new Array(deviceCap);
    this.installId = new Array(deviceCap);
    this.deviceModel = new Uint8Array(deviceCap);
    this.deviceOs = new Uint8Array(deviceCap);
    this.deviceFlags = new Uint8Array(deviceCap);
    this.deviceVariant = new Uint8Array(deviceCap);
    this.deviceReported = new Uint8Array(deviceCap);
    this.deviceOwner = new Int32Array(deviceCap);
    this.versionPick = APP_VERSION_WEIGHTS.map((_, i) =>
      APP_VERSION_WEIGHTS.slice(0, i + 1).reduce((a, b) => a + b, 0),
    );
    for (let i = 0; i < initialUsers; i++) {
      const u = this.addUser(this.rng.chance(0.72) ? 0 : this.rng.chance(0.96) ? 1 : 2, homeIp(this.rng));
      if (this.rng.chance(0.5)) this.balance[u] = this.rng.range(50, 5000);
    }
    this.streamers = new Int32Array(Math.min(streamerCount, initialUsers));
    for (let k = 0; k < this.streamers.length; k++) this.streamers[k] = k; // the first users stream
  }

  uid(user: number): number {
    return this.uidBase + user;
  }

  roomId(streamer: number): number {
    return FIRST_ROOM_ID + streamer;
  }

  /** A new user with a device of their own; returns the user index. */
  addUser(platform: number, ip: string, device?: number): number {
    const u = this.users++;
    if (u >= this.platform.length) throw new Error("simulated population is full: raise the capacity for new users");
    this.platform[u] = platform;
    const r = this.rng.next();
    let v = 0;
    while (v < this.versionPick.length - 1 && r > (this.versionPick[v] as number)) v++;
    this.appVersion[u] = v;
    this.homeIp[u] = ip;
    this.device[u] = device ?? this.addDevice(u, platform === 1 ? "ios" : "android", 0);
    return u;
  }

  addDevice(owner: number, os: "android" | "ios", flags: number): number {
    const d = this.devices++;
    if (d >= this.deviceId.length) throw new Error("simulated population is full: raise the capacity for new devices");
    this.deviceId[d] = `d-${this.rng.hex(12)}`;
    this.installId[d] = `i-${this.rng.hex(10)}`;
    this.deviceOwner[d] = owner;
    this.deviceFlags[d] = flags;
    if (flags & DEVICE_EMULATOR) {
      this.deviceModel[d] = this.rng.int(EMULATORS.length);
    } else if (os === "ios") {
      this.deviceModel[d] = 128 + this.rng.int(IOS_MODELS.length);
      this.deviceOs[d] = this.rng.int(IOS_VERSIONS.length);
    } else {
      const m = this.rng.int(ANDROID_MODELS.length);
      this.deviceModel[d] = m;
      this.deviceOs[d] = this.rng.int((ANDROID_MODELS[m] as AndroidModel).os.length);
    }
    if (!(flags & DEVICE_EMULATOR) && this.rng.chance(0.02)) {
      // Some genuine users root or jailbreak their phones: a signal, not a verdict.
      this.deviceFlags[d] = flags | (os === "ios" ? DEVICE_JAILBROKEN : DEVICE_ROOTED);
    } else if (!(flags & DEVICE_EMULATOR) && os === "android") {
      // Cheap phones and tablets, and vendor ROMs with busybox: genuine devices that look odd.
      const r = this.rng.next();
      if (r < 0.03) {
        this.deviceFlags[d] = flags | DEVICE_CHEAP;
        this.deviceModel[d] = this.rng.int(CHEAP_MODELS.length);
      } else if (r < 0.05) this.deviceFlags[d] = flags | DEVICE_BUSYBOX;
    }
    this.setVariant(d);
    return d;
  }

  /** Gives a device new flags (a campaign roots it, a look-alike makes it cheap), with a variant to match. */
  markDevice(d: number, flags: number): void {
    this.deviceFlags[d] = (this.deviceFlags[d] as number) | flags;
    if (flags & DEVICE_CHEAP && !this.isIos(d)) this.deviceModel[d] = this.rng.int(CHEAP_MODELS.length);
    this.setVariant(d);
  }

  private setVariant(d: number): void {
    const flags = this.deviceFlags[d] as number;
    const rng = this.rng;
    let v = 0;
    if (flags & DEVICE_EMULATOR) {
      // At most one of the strong groups (build, sensors) and one of the weak ones (telephony,
      // battery) hidden; a farm may hide both strong groups (fraud.ts), then its accounts give it away.
      const strong = rng.next();
      if (strong < 0.25) v |= EMU_HIDES_BUILD;
      else if (strong < 0.45) v |= EMU_HIDES_SENSORS;
      const weak = rng.next();
      if (weak < 0.25) v |= EMU_HIDES_TELEPHONY;
      else if (weak < 0.45) v |= EMU_HIDES_BATTERY;
    } else if (flags & (DEVICE_ROOTED | DEVICE_JAILBROKEN)) {
      // Magisk hides itself, a renamed manager, a hook framework alone: at least one sign shows.
      if (rng.chance(0.6)) v |= ROOT_SHOWS_SU;
      if (rng.chance(0.5)) v |= ROOT_SHOWS_PACKAGE;
      if (rng.chance(0.3)) v |= ROOT_SHOWS_MAGISK_DIR;
      if (rng.chance(0.3)) v |= ROOT_SHOWS_HOOK;
      if (v === 0) v = rng.pick([ROOT_SHOWS_SU, ROOT_SHOWS_PACKAGE, ROOT_SHOWS_HOOK]);
    } else if (flags & DEVICE_CHEAP) {
      // One or two single checks tripped, never all three.
      v = rng.pick([
        CHEAP_FEW_SENSORS,
        CHEAP_NO_TELEPHONY,
        CHEAP_ON_CHARGER,
        CHEAP_FEW_SENSORS | CHEAP_NO_TELEPHONY,
        CHEAP_NO_TELEPHONY | CHEAP_ON_CHARGER,
        CHEAP_FEW_SENSORS | CHEAP_ON_CHARGER,
      ]);
    } else if (flags & DEVICE_BUSYBOX) {
      if (rng.chance(0.3)) v |= BUSYBOX_TEST_KEYS;
    }
    this.deviceVariant[d] = v;
  }

  isIos(device: number): boolean {
    return (this.deviceModel[device] as number) >= 128;
  }

  appVersionOf(user: number): string {
    return APP_VERSIONS[this.appVersion[user] as number] as string;
  }

  platformOf(user: number): string {
    return PLATFORMS[this.platform[user] as number] as string;
  }

  /** The device report the SDK sends, with whatever the device really is (and shows of itself). */
  deviceReport(d: number, id: string, ts: number, uid: number | null, ip: string): DeviceReport {
    const flags = this.deviceFlags[d] as number;
    const variant = this.deviceVariant[d] as number;
    this.deviceReported[d] = 1;
    const rng = this.rng;
    const emulator = (flags & DEVICE_EMULATOR) !== 0;
    const cheap = !emulator && (flags & DEVICE_CHEAP) !== 0;
    const ios = !emulator && this.isIos(d);
    const rooted = (flags & DEVICE_ROOTED) !== 0;
    const jailbroken = (flags & DEVICE_JAILBROKEN) !== 0;
    const busybox = (flags & DEVICE_BUSYBOX) !== 0;
    // An emulator imitating a real phone reports that phone's build, signed with release keys.
    const emuBuild = emulator && !(variant & EMU_HIDES_BUILD);
    let build: DeviceReport["build"];
    let osVersion: string;
    if (ios) {
      osVersion = IOS_VERSIONS[this.deviceOs[d] as number] as string;
      const model = IOS_MODELS[(this.deviceModel[d] as number) - 128] as string;
      build = {
        fingerprint: "",
        model,
        manufacturer: "Apple",
        brand: "",
        hardware: "",
        product: "",
        device: "",
        board: "",
        tags: "",
        type: "",
      };
    } else {
      const models = emuBuild ? EMULATORS : cheap ? CHEAP_MODELS : ANDROID_MODELS;
      const m = models[(this.deviceModel[d] as number) % models.length] as AndroidModel;
      osVersion = m.os[this.deviceOs[d] as number] ?? (m.os[0] as string);
      const keys = emuBuild
        ? m.hardware === "ranchu"
          ? "dev-keys"
          : "test-keys"
        : (rooted && rng.chance(0.3)) || (busybox && variant & BUSYBOX_TEST_KEYS)
          ? "test-keys"
          : "release-keys";
      const type = emuBuild ? "userdebug" : "user";
      build = {
        fingerprint: `${m.brand}/${m.product}/${m.device}:${osVersion}/${emuBuild ? "TE1A.220922.012" : "UKQ1.230804.001"}/${emuBuild ? "9302419" : "V816.0.5"}:${type}/${keys}`,
        model: m.model,
        manufacturer: m.manufacturer,
        brand: m.brand,
        hardware: m.hardware,
        product: m.product,
        device: m.device,
        board: m.board,
        tags: keys,
        type,
      };
    }
    const emuSensors = emulator && !(variant & EMU_HIDES_SENSORS);
    const sensorCount = emuSensors
      ? rng.range(1, 3)
      : cheap && variant & CHEAP_FEW_SENSORS
        ? rng.range(2, 4)
        : cheap
          ? rng.range(6, 10)
          : rng.range(12, REAL_SENSORS.length);
    const emuBattery = emulator && !(variant & EMU_HIDES_BATTERY);
    const emuTelephony = emulator && !(variant & EMU_HIDES_TELEPHONY);
    const noSim = emuTelephony || (cheap && (variant & CHEAP_NO_TELEPHONY) !== 0);
    const onCharger = cheap && (variant & CHEAP_ON_CHARGER) !== 0;
    return {
      id,
      ts,
      deviceId: this.deviceId[d] as string,
      installId: this.installId[d] as string,
      uid,
      platform: ios ? "IOS" : "ANDROID",
      osVersion,
      appVersion: APP_VERSIONS[rng.int(2)] as string,
      build,
      sensors: emuSensors
        ? REAL_SENSORS.slice(0, sensorCount).map((s) => `Goldfish ${s}`)
        : REAL_SENSORS.slice(0, sensorCount),
      // Emulators report a full battery on a charger at a constant temperature; a tablet left on
      // its charger is full too, but warm and at a real cell's voltage.
      battery: emuBattery
        ? { level: 100, charging: true, temperatureDeciC: 250, voltageMv: 5000 }
        : onCharger
          ? { level: 100, charging: true, temperatureDeciC: rng.range(290, 360), voltageMv: rng.range(4300, 4400) }
          : {
              level: rng.range(5, 100),
              charging: rng.chance(0.25),
              temperatureDeciC: rng.range(240, 390),
              voltageMv: rng.range(3600, 4400),
            },
      telephony: noSim
        ? { imeiPresent: false, imsiPresent: false, simOperator: null }
        : {
            imeiPresent: !ios,
            imsiPresent: rng.chance(0.95),
            simOperator: rng.pick(["46000", "46001", "46011", "46002"]),
          },
      root: {
        suPaths: rooted
          ? [
              ...(variant & ROOT_SHOWS_SU ? rng.pick([["/system/xbin/su"], ["/sbin/su", "/system/bin/su"]]) : []),
              ...(variant & ROOT_SHOWS_MAGISK_DIR ? ["/data/adb/magisk/busybox"] : []),
            ]
          : busybox
            ? [rng.pick(["/system/xbin/busybox", "/system/bin/busybox"])]
            : [],
        packages:
          rooted && variant & ROOT_SHOWS_PACKAGE
            ? [rng.pick(["com.topjohnwu.magisk", "eu.chainfire.supersu", "me.weishu.kernelsu"])]
            : jailbroken && variant & ROOT_SHOWS_PACKAGE
              ? [rng.pick(["com.saurik.Cydia", "org.coolstar.SileoStore"])]
              : [],
        testKeys: build.tags === "test-keys",
        writableSystem: rooted ? rng.chance(0.4) : emuBuild,
        debuggable: emuBuild || (rooted && rng.chance(0.2)),
        hookFrameworks:
          (rooted || jailbroken) && variant & ROOT_SHOWS_HOOK
            ? [rooted ? rng.pick(["xposed", "lsposed", "frida"]) : "substrate"]
            : [],
        jailbreakPaths: jailbroken
          ? [
              "/Applications/Cydia.app",
              "/var/jb",
              "/Library/MobileSubstrate/MobileSubstrate.dylib",
              "/usr/sbin/sshd",
              "/etc/apt",
            ].slice(rng.int(2), rng.range(2, 5))
          : [],
      },
      ip,
      network: rng.pick(["wifi", "wifi", "4g", "5g"]),
      source: null,
    };
  }
}

export function homeIp(rng: Rng): string {
  if (rng.chance(0.1)) return `2408:8207:${rng.hex(4)}:${rng.hex(4)}::${rng.range(1, 255).toString(16)}`;
  return `${rng.pick(HOME_NETS)}.${rng.range(0, 255)}.${rng.range(1, 254)}`;
}

/** An address in one /24 of a cloud provider: where farms run their phones and emulators. */
export function datacenterSubnet(rng: Rng): string {
  return `${rng.pick(DATACENTER_NETS)}.${rng.range(0, 255)}`;
}

/** A mainland mobile number, written the ways people type it. */
export function phoneNumber(rng: Rng, prefix: string): string {
  const rest = String(rng.range(0, 99_999_999)).padStart(8, "0");
  return formatPhone(rng, `${prefix}${rest}`);
}

export function formatPhone(rng: Rng, digits: string): string {
  const r = rng.next();
  if (r < 0.7) return digits;
  if (r < 0.85) return `+86${digits}`;
  if (r < 0.95) return `${digits.slice(0, 3)} ${digits.slice(3, 7)} ${digits.slice(7)}`;
  return `+86-${digits.slice(0, 3)}-${digits.slice(3, 7)}-${digits.slice(7)}`;
}

export function legitPhone(rng: Rng): string {
  // A few genuine users have virtual-operator numbers too.
  return phoneNumber(rng, rng.chance(0.04) ? rng.pick(VIRTUAL_PHONE_PREFIXES) : rng.pick(LEGIT_PHONE_PREFIXES));
}

export function spamMessage(rng: Rng): string {
  const text = rng
    .pick(SPAM_TEMPLATES)
    .replace("{wx}", `wx_${rng.hex(6)}`)
    .replace("{qq}", String(rng.range(100_000_000, 999_999_999)))
    .replace("{phone}", phoneNumber(rng, rng.pick(LEGIT_PHONE_PREFIXES)))
    .replace("{url}", `http://t.${rng.pick(["cn", "ly", "me"])}/${rng.hex(6)}`);
  return disguise(rng, text);
}

const FULL_WIDTH_OFFSET = 0xff01 - 0x21;
const CHINESE_DIGITS = "零一二三四五六七八九";

/** How spammers dodge word filters: full-width characters, spaced digits, Chinese numerals, homoglyphs, 加V. */
function disguise(rng: Rng, text: string): string {
  switch (rng.int(6)) {
    case 0:
      return text; // plain
    case 1: // full-width letters and digits
      return text.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + FULL_WIDTH_OFFSET));
    case 2: // a space between digits
      return text.replace(/(\d)(?=\d)/g, "$1 ");
    case 3: // Chinese numerals for the digits
      return text.replace(/\d/g, (c) => CHINESE_DIGITS[Number(c)] as string);
    case 4: // letters that look like others (circled, Roman numerals): fold() maps them back
      return text.replace(/v/gi, () => rng.pick(["ⓥ", "Ⅴ", "V"])).replace(/x/g, () => rng.pick(["ⓧ", "x"]));
    default: // the WeChat cue written as 加V / 薇 / V信
      return `${rng.pick(["加V", "+V", "薇", "V信", "加薇"])} ${text.replace(/加微信|vx:|QQ群/g, "")}`;
  }
}

/** A genuine user giving a friend a way to reach them, once. */
export function contactOnce(rng: Rng, phone: string): string {
  return rng
    .pick([
      "我的手机 {phone} 到了给我打电话",
      "@小王 我号码 {phone} 晚点联系",
      "我微信 {wx} 回头拉你进群",
      "我电话换了，新号 {phone}",
    ])
    .replace("{phone}", phone)
    .replace("{wx}", `${rng.pick(["zhang", "li", "wang", "chen"])}_${rng.range(1980, 2008)}`);
}
