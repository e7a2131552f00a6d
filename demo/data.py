"""The demo brand of ``manage.py seed_demo``: stores, menu, people.

Plain data only; the command turns it into rows with get-or-create on each
model's natural key, so the data can change and a re-run brings rows up to date.
"""

from decimal import Decimal as D

from catalog.models import StockDeductionMode

ON_ORDER = StockDeductionMode.ON_ORDER.value
ON_PAYMENT = StockDeductionMode.ON_PAYMENT.value

DEMO_PASSWORD = "demo12345"

BRAND = {"code": "demo", "name": "老街坊餐饮", "unpaid_timeout_minutes": 15, "after_sales_days": 7}

_EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]
STORES = [
    {
        "code": "xuhui", "name": "老街坊·徐汇店", "address": "上海市徐汇区漕溪北路398号汇智大厦1楼",
        "phone": "021-64871234", "latitude": D("31.193210"), "longitude": D("121.437980"),
        "business_hours": [{"weekdays": _EVERY_DAY, "open": "10:00", "close": "22:00"}],
        "mode": "open", "auto_accept": True, "default_prep_minutes": 15,
    },
    {
        "code": "jingan", "name": "老街坊·静安店", "address": "上海市静安区南京西路1266号恒隆广场B1层",
        "phone": "021-62881566", "latitude": D("31.229090"), "longitude": D("121.452310"),
        "business_hours": [
            {"weekdays": [1, 2, 3, 4, 5], "open": "10:30", "close": "14:00"},
            {"weekdays": [1, 2, 3, 4, 5], "open": "16:30", "close": "21:30"},
            {"weekdays": [6, 7], "open": "10:00", "close": "22:00"},
        ],
        "mode": "busy", "auto_accept": False, "default_prep_minutes": 20, "busy_extra_minutes": 15,
    },
    {
        "code": "pudong", "name": "老街坊·浦东陆家嘴店", "address": "上海市浦东新区陆家嘴环路1000号国金中心L3",
        "phone": "021-58781888", "latitude": D("31.236870"), "longitude": D("121.501760"),
        "business_hours": [{"weekdays": _EVERY_DAY, "open": "09:30", "close": "23:00"}],
        "mode": "open", "auto_accept": False, "default_prep_minutes": 15,
    },
]

TIERS = [
    {"code": "normal", "name": "NORMAL", "price_rate": D("1.000"), "free_delivery": False, "rank": 0},
    {"code": "gold", "name": "GOLD", "price_rate": D("0.990"), "free_delivery": False, "rank": 1},
    {"code": "super", "name": "SUPER", "price_rate": D("0.980"), "free_delivery": True, "rank": 2},
]

# category -> [(sku code, product, spec, price, packaging fee, stock mode)]
# Products with specs appear once per spec (大份/小份 share one product).
MENU = {
    "招牌热菜": [
        ("HC001", "宫保鸡丁", "大份", D("38.00"), D("2.00"), ON_PAYMENT),
        ("HC002", "宫保鸡丁", "小份", D("26.00"), D("1.00"), ON_PAYMENT),
        ("HC003", "鱼香肉丝", "大份", D("34.00"), D("2.00"), ON_PAYMENT),
        ("HC004", "鱼香肉丝", "小份", D("24.00"), D("1.00"), ON_PAYMENT),
        ("HC005", "麻婆豆腐", "", D("22.00"), D("1.00"), ON_PAYMENT),
        ("HC006", "回锅肉", "", D("36.00"), D("2.00"), ON_PAYMENT),
        ("HC007", "红烧肉", "", D("48.00"), D("2.00"), ON_ORDER),
        ("HC008", "水煮牛肉", "", D("58.00"), D("2.00"), ON_PAYMENT),
    ],
    "家常小炒": [
        ("XC001", "番茄炒蛋", "", D("18.00"), D("1.00"), ON_PAYMENT),
        ("XC002", "干煸四季豆", "", D("24.00"), D("1.00"), ON_PAYMENT),
        ("XC003", "地三鲜", "", D("26.00"), D("1.00"), ON_PAYMENT),
        ("XC004", "蒜蓉西兰花", "", D("20.00"), D("1.00"), ON_PAYMENT),
        ("XC005", "酸辣土豆丝", "", D("16.00"), D("1.00"), ON_PAYMENT),
    ],
    "主食": [
        ("ZS001", "扬州炒饭", "大份", D("28.00"), D("1.00"), ON_PAYMENT),
        ("ZS002", "扬州炒饭", "小份", D("18.00"), D("1.00"), ON_PAYMENT),
        ("ZS003", "葱油拌面", "", D("16.00"), D("1.00"), ON_PAYMENT),
        ("ZS004", "上海生煎(4只)", "", D("15.00"), D("1.00"), ON_ORDER),
        ("ZS005", "米饭", "", D("3.00"), D("0.00"), ON_PAYMENT),
        ("ZS006", "南翔小笼包", "", D("26.00"), D("1.00"), ON_ORDER),
    ],
    "汤羹": [
        ("TG001", "酸辣汤", "", D("18.00"), D("1.50"), ON_PAYMENT),
        ("TG002", "西湖牛肉羹", "", D("26.00"), D("1.50"), ON_PAYMENT),
        ("TG003", "紫菜蛋花汤", "", D("12.00"), D("1.50"), ON_PAYMENT),
    ],
    "饮品甜点": [
        ("YP001", "珍珠奶茶", "大杯", D("16.00"), D("0.50"), ON_PAYMENT),
        ("YP002", "珍珠奶茶", "中杯", D("13.00"), D("0.50"), ON_PAYMENT),
        ("YP003", "酸梅汤", "", D("8.00"), D("0.50"), ON_PAYMENT),
        ("YP004", "杨枝甘露", "", D("22.00"), D("0.50"), ON_ORDER),
        ("YP005", "桂花酒酿圆子", "", D("14.00"), D("0.50"), ON_PAYMENT),
    ],
    "代金券": [
        ("QV050", "50元代金券", "", D("45.00"), D("0.00"), ON_PAYMENT),
        ("QV100", "100元代金券", "", D("88.00"), D("0.00"), ON_PAYMENT),
        ("QV200", "双人套餐券", "", D("128.00"), D("0.00"), ON_ORDER),
    ],
}
VOUCHER_CATEGORY = "代金券"

# (store code, sku code) -> store price (None keeps the brand price)
STORE_PRICES = {
    ("pudong", "HC001"): D("42.00"),
    ("pudong", "HC008"): D("64.00"),
    ("pudong", "YP001"): D("18.00"),
    ("jingan", "HC007"): D("52.00"),
}
# Sold out (沽清) at one store.
SOLD_OUT = {("jingan", "HC008"), ("pudong", "YP004")}

# (platform, sku code, platform food code, platform sku id), brand-wide.
PLATFORM_MAPPINGS = [
    ("meituan", "HC001", "mt_gbjd", "1001001"),
    ("meituan", "HC002", "mt_gbjd", "1001002"),
    ("meituan", "HC005", "mt_mpdf", "1001005"),
    ("meituan", "ZS001", "mt_yzcf", "1002001"),
    ("meituan", "HC003", "mt_yxrs", "1001003"),
    ("eleme", "HC001", "elm_gbjd", "200000101"),
    ("eleme", "HC003", "elm_yxrs", "200000103"),
    ("eleme", "HC005", "elm_mpdf", "200000105"),
    ("eleme", "ZS001", "elm_yzcf", "200000401"),
    ("eleme", "TG001", "elm_slt", "200000201"),
    ("eleme", "YP001", "elm_zznc", "200000301"),
]
# (The simulator's default menus, simulator/orders_gen.py, are exactly these items:
# Meituan lines are matched by sku_id through this table, Ele.me lines by extendCode.)

# Platform bindings of the demo stores, to the simulator's default shops (the shops of
# simulator/demo_config.json, which run_stack passes to the simulator). The base URL is
# settings.SIMULATOR_BASE_URL.
# store code -> (Meituan app_poi_code, Ele.me shopId)
PLATFORM_SHOPS = {
    "xuhui": ("mt-store-1", "el-store-1"),
    "jingan": ("mt-store-2", "el-store-2"),
    "pudong": ("mt-store-3", "el-store-3"),
}
MEITUAN_CREDENTIALS = {"app_id": "sim-mt-app", "secret": "sim-mt-secret", "token": ""}
ELEME_CREDENTIALS = {"app_id": "sim-el-app", "secret": "sim-el-secret", "token": "sim-el-token"}
PULL_INTERVAL_SECONDS = 10

# One POS terminal per demo store with a known token (stored hashed like any other),
# used by `manage.py pos_demo_client`. Demo only: rotate it in the admin for real use.
POS_TERMINAL_NAME = "演示POS"
POS_TOKEN_FORMAT = "demo-pos-{store}"


def pos_demo_token(store_code: str) -> str:
    return POS_TOKEN_FORMAT.format(store=store_code)

# Customers: (name, phone, tier code)
CUSTOMERS = [
    ("王芳", "13812340001", "super"), ("李娜", "13812340002", "gold"), ("张伟", "13812340003", "normal"),
    ("刘洋", "13812340004", "normal"), ("陈静", "13812340005", "gold"), ("杨磊", "13912340006", "super"),
    ("赵敏", "13912340007", "normal"), ("黄晓明", "13912340008", "normal"), ("周杰", "13912340009", "gold"),
    ("吴婷", "13912340010", "normal"), ("徐强", "15012340011", "super"), ("孙丽", "15012340012", "normal"),
    ("马超", "15012340013", "normal"), ("朱琳", "15012340014", "gold"), ("胡斌", "15012340015", "normal"),
    ("郭佳", "18612340016", "normal"), ("何欣", "18612340017", "super"), ("高翔", "18612340018", "normal"),
    ("林小雨", "18612340019", "gold"), ("罗志勇", "18612340020", "normal"),
]

DELIVERY_ADDRESSES = [
    ("上海市徐汇区宜山路700号普天信息产业园C1栋12楼", D("31.175400"), D("121.418900")),
    ("上海市徐汇区天钥桥路580号3号楼502室", D("31.186500"), D("121.438800")),
    ("上海市静安区江宁路1158号友谊大厦18楼", D("31.236100"), D("121.447200")),
    ("上海市静安区延安中路841号东方海外大厦9楼", D("31.224200"), D("121.455300")),
    ("上海市浦东新区世纪大道100号环球金融中心35楼", D("31.234500"), D("121.507900")),
    ("上海市浦东新区浦电路438号双鸽大厦1602", D("31.227300"), D("121.525400")),
    ("上海市长宁区愚园路1258号2单元301室", D("31.220600"), D("121.427700")),
    ("上海市黄浦区西藏中路268号来福士广场写字楼20楼", D("31.232400"), D("121.475000")),
]

CUSTOMER_NOTES = ["", "", "", "少辣", "不要香菜", "多放醋", "米饭多一份", "请放门口，谢谢", "餐具两份"]
COURIERS = [("陈师傅", "13700001111"), ("李师傅", "13700002222"), ("王师傅", "13700003333")]
