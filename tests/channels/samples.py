"""Hand-written platform payloads, shaped exactly as PLATFORMS.md describes them.

Meituan: 2 x 宫保鸡丁 28.00 (2 boxes at 1.00) + 1 x 米饭 2.50 (no box, unknown to
the merchant), no bag fee, shipping 5.00, 满50减10 (platform 4.00, merchant 6.00):
original 58.50 + 2.00 + 5.00 = 65.50, total 55.50.

Ele.me: 2 x 扬州炒饭 24.00, package 1.60, delivery 4.00, 满40减8.5 (Ele.me 3.50,
shop 5.00): original 53.60, total 45.10.
"""

import json

MEITUAN_SHOP = "mt-poi-001"
ELEME_SHOP = "160001"

# 2026-11-22 12:00:00 in Shanghai.
CTIME = 1795320000


def meituan_order(**overrides) -> dict:
    detail = [
        {"app_food_code": "HC001", "food_name": "宫保鸡丁", "sku_id": "1001001", "quantity": 2, "price": 28.0,
         "box_num": 2, "box_price": 1.0, "unit": "份", "food_property": "", "spec": "大份"},
        {"app_food_code": "RICE-X", "food_name": "米饭", "sku_id": "1009999", "quantity": 1, "price": 2.5,
         "box_num": 0, "box_price": 0, "unit": "碗", "food_property": "", "spec": ""},
    ]
    extras = [{"act_detail_id": 501, "reduce_fee": 10, "mt_charge": 4, "poi_charge": 6, "remark": "满50减10",
               "type": 2}]
    order = {
        "order_id": 27900000000001, "wm_order_id_view": "27900000000001", "app_poi_code": MEITUAN_SHOP,
        "day_seq": 7, "status": 2, "ctime": CTIME, "utime": CTIME, "delivery_time": 0,
        "recipient_name": "王先生", "recipient_phone": "13812345678",
        "recipient_address": "上海市徐汇区漕溪北路398号5楼", "latitude": 31.18, "longitude": 121.43,
        "caution": "少辣", "shipping_fee": 5, "total": 55.5, "original_price": 65.5, "package_bag_money": 0,
        "pay_type": 2, "detail": json.dumps(detail, ensure_ascii=False),
        "extras": json.dumps(extras, ensure_ascii=False), "refund_status": 0, "refund_reason": "",
    }
    order.update(overrides)
    return order


def eleme_order(**overrides) -> dict:
    order = {
        "id": "3025112212000001", "shopId": int(ELEME_SHOP), "daySn": 12, "status": "unprocessed",
        "refundStatus": "noRefund", "createdAt": "2026-11-22T12:30:05", "deliverTime": None,
        "consignee": "李女士", "phoneList": ["13900001111"], "address": "上海市静安区南京西路1266号",
        "deliveryGeo": "121.45,31.23", "description": "不要香菜", "totalPrice": 45.1, "originalPrice": 53.6,
        "deliverFee": 4, "packageFee": 1.6,
        "groups": [{"name": "1号篮子", "type": "normal", "items": [
            {"id": 700001, "skuId": 800001, "name": "扬州炒饭", "price": 24.0, "quantity": 2, "total": 48.0,
             "extendCode": "ZS001"},
        ]}],
        "orderActivities": [{"id": 9001, "name": "满40减8.5", "amount": -8.5, "elemePart": -3.5,
                             "restaurantPart": -5}],
    }
    order.update(overrides)
    return order
