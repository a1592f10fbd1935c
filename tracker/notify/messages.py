"""Customer email wording per language (message tables, one per language) and the choice of
language from the customer's locale."""

from __future__ import annotations

MILESTONES: tuple[str, ...] = ("shipped", "out_for_delivery", "available_for_pickup", "delivered", "exception")
DEFAULT = "en"

#: per language: "<milestone>.subject", "<milestone>.intro", and the shared phrases.
#: Placeholders: {seller}, {order}, {name}, {date}, {contact}.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "shipped.subject": "{seller}: your order {order} has shipped",
        "shipped.intro": "Good news: your order {order} is on its way.",
        "out_for_delivery.subject": "{seller}: your parcel is out for delivery",
        "out_for_delivery.intro": "Your parcel for order {order} is out for delivery today.",
        "available_for_pickup.subject": "{seller}: your parcel is ready for pickup",
        "available_for_pickup.intro": "Your parcel for order {order} is waiting for you at the pickup point.",
        "delivered.subject": "{seller}: your parcel has been delivered",
        "delivered.intro": "Your parcel for order {order} has been delivered.",
        "exception.subject": "{seller}: there is a problem with your parcel",
        "exception.intro": "The carrier reported a problem delivering your parcel for order {order}.",
        "greeting": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "tracking_number": "Tracking number",
        "carrier": "Carrier",
        "eta": "Expected delivery: {date}",
        "track": "Track your parcel",
        "contact": "Questions? Contact {seller}: {contact}",
        "unsubscribe": "Stop emails about this parcel",
        "why": "You receive this email because you ordered from {seller}.",
    },
    "zh-Hans": {
        "shipped.subject": "{seller}：您的订单 {order} 已发货",
        "shipped.intro": "好消息：您的订单 {order} 已发出。",
        "out_for_delivery.subject": "{seller}：您的包裹正在派送",
        "out_for_delivery.intro": "订单 {order} 的包裹今天正在派送中。",
        "available_for_pickup.subject": "{seller}：您的包裹可以取件了",
        "available_for_pickup.intro": "订单 {order} 的包裹已到达自提点，等待您取件。",
        "delivered.subject": "{seller}：您的包裹已签收",
        "delivered.intro": "订单 {order} 的包裹已送达。",
        "exception.subject": "{seller}：您的包裹派送出现问题",
        "exception.intro": "承运商报告订单 {order} 的包裹派送出现问题。",
        "greeting": "{name}，您好：",
        "greeting_anonymous": "您好：",
        "tracking_number": "运单号",
        "carrier": "承运商",
        "eta": "预计送达：{date}",
        "track": "查看物流",
        "contact": "如有疑问，请联系 {seller}：{contact}",
        "unsubscribe": "不再接收此包裹的邮件",
        "why": "您收到此邮件是因为您在 {seller} 下了订单。",
    },
    "es": {
        "shipped.subject": "{seller}: tu pedido {order} ha sido enviado",
        "shipped.intro": "Buenas noticias: tu pedido {order} está en camino.",
        "out_for_delivery.subject": "{seller}: tu paquete está en reparto",
        "out_for_delivery.intro": "El paquete de tu pedido {order} está en reparto hoy.",
        "available_for_pickup.subject": "{seller}: tu paquete está listo para recoger",
        "available_for_pickup.intro": "El paquete de tu pedido {order} te espera en el punto de recogida.",
        "delivered.subject": "{seller}: tu paquete ha sido entregado",
        "delivered.intro": "El paquete de tu pedido {order} ha sido entregado.",
        "exception.subject": "{seller}: hay un problema con tu paquete",
        "exception.intro": "El transportista informó de un problema con la entrega de tu pedido {order}.",
        "greeting": "Hola, {name}:",
        "greeting_anonymous": "Hola:",
        "tracking_number": "Número de seguimiento",
        "carrier": "Transportista",
        "eta": "Entrega prevista: {date}",
        "track": "Seguir mi paquete",
        "contact": "¿Preguntas? Contacta con {seller}: {contact}",
        "unsubscribe": "No recibir más correos sobre este paquete",
        "why": "Recibes este correo porque hiciste un pedido a {seller}.",
    },
    "fr": {
        "shipped.subject": "{seller} : votre commande {order} a été expédiée",
        "shipped.intro": "Bonne nouvelle : votre commande {order} est en route.",
        "out_for_delivery.subject": "{seller} : votre colis est en cours de livraison",
        "out_for_delivery.intro": "Le colis de votre commande {order} est en cours de livraison aujourd'hui.",
        "available_for_pickup.subject": "{seller} : votre colis est disponible en point de retrait",
        "available_for_pickup.intro": "Le colis de votre commande {order} vous attend au point de retrait.",
        "delivered.subject": "{seller} : votre colis a été livré",
        "delivered.intro": "Le colis de votre commande {order} a été livré.",
        "exception.subject": "{seller} : un problème est survenu avec votre colis",
        "exception.intro": "Le transporteur signale un problème de livraison pour votre commande {order}.",
        "greeting": "Bonjour {name},",
        "greeting_anonymous": "Bonjour,",
        "tracking_number": "Numéro de suivi",
        "carrier": "Transporteur",
        "eta": "Livraison prévue : {date}",
        "track": "Suivre mon colis",
        "contact": "Des questions ? Contactez {seller} : {contact}",
        "unsubscribe": "Ne plus recevoir d'e-mails pour ce colis",
        "why": "Vous recevez cet e-mail car vous avez commandé chez {seller}.",
    },
    "de": {
        "shipped.subject": "{seller}: Ihre Bestellung {order} wurde versandt",
        "shipped.intro": "Gute Nachricht: Ihre Bestellung {order} ist unterwegs.",
        "out_for_delivery.subject": "{seller}: Ihr Paket ist in Zustellung",
        "out_for_delivery.intro": "Das Paket zu Ihrer Bestellung {order} wird heute zugestellt.",
        "available_for_pickup.subject": "{seller}: Ihr Paket liegt zur Abholung bereit",
        "available_for_pickup.intro": "Das Paket zu Ihrer Bestellung {order} liegt in der Abholstelle für Sie bereit.",
        "delivered.subject": "{seller}: Ihr Paket wurde zugestellt",
        "delivered.intro": "Das Paket zu Ihrer Bestellung {order} wurde zugestellt.",
        "exception.subject": "{seller}: Problem mit Ihrem Paket",
        "exception.intro": "Der Zusteller meldet ein Problem bei der Zustellung Ihrer Bestellung {order}.",
        "greeting": "Hallo {name},",
        "greeting_anonymous": "Hallo,",
        "tracking_number": "Sendungsnummer",
        "carrier": "Versanddienstleister",
        "eta": "Voraussichtliche Zustellung: {date}",
        "track": "Sendung verfolgen",
        "contact": "Fragen? Kontaktieren Sie {seller}: {contact}",
        "unsubscribe": "Keine E-Mails mehr zu diesem Paket",
        "why": "Sie erhalten diese E-Mail, weil Sie bei {seller} bestellt haben.",
    },
    "ru": {
        "shipped.subject": "{seller}: ваш заказ {order} отправлен",
        "shipped.intro": "Хорошие новости: ваш заказ {order} уже в пути.",
        "out_for_delivery.subject": "{seller}: посылка передана курьеру",
        "out_for_delivery.intro": "Посылка по заказу {order} будет доставлена сегодня.",
        "available_for_pickup.subject": "{seller}: посылка ждёт в пункте выдачи",
        "available_for_pickup.intro": "Посылка по заказу {order} ждёт вас в пункте выдачи.",
        "delivered.subject": "{seller}: посылка доставлена",
        "delivered.intro": "Посылка по заказу {order} доставлена.",
        "exception.subject": "{seller}: проблема с доставкой посылки",
        "exception.intro": "Перевозчик сообщил о проблеме с доставкой посылки по заказу {order}.",
        "greeting": "Здравствуйте, {name}!",
        "greeting_anonymous": "Здравствуйте!",
        "tracking_number": "Трек-номер",
        "carrier": "Перевозчик",
        "eta": "Ожидаемая доставка: {date}",
        "track": "Отследить посылку",
        "contact": "Вопросы? Свяжитесь с {seller}: {contact}",
        "unsubscribe": "Не присылать письма об этой посылке",
        "why": "Вы получили это письмо, потому что сделали заказ у {seller}.",
    },
    "pt": {
        "shipped.subject": "{seller}: o seu pedido {order} foi enviado",
        "shipped.intro": "Boas notícias: o seu pedido {order} está a caminho.",
        "out_for_delivery.subject": "{seller}: o seu pacote saiu para entrega",
        "out_for_delivery.intro": "O pacote do seu pedido {order} saiu para entrega hoje.",
        "available_for_pickup.subject": "{seller}: o seu pacote está pronto para retirada",
        "available_for_pickup.intro": "O pacote do seu pedido {order} aguarda você no ponto de retirada.",
        "delivered.subject": "{seller}: o seu pacote foi entregue",
        "delivered.intro": "O pacote do seu pedido {order} foi entregue.",
        "exception.subject": "{seller}: há um problema com o seu pacote",
        "exception.intro": "A transportadora informou um problema na entrega do seu pedido {order}.",
        "greeting": "Olá, {name},",
        "greeting_anonymous": "Olá,",
        "tracking_number": "Código de rastreio",
        "carrier": "Transportadora",
        "eta": "Entrega prevista: {date}",
        "track": "Rastrear o pacote",
        "contact": "Dúvidas? Fale com {seller}: {contact}",
        "unsubscribe": "Não receber mais e-mails sobre este pacote",
        "why": "Você recebe este e-mail porque fez um pedido em {seller}.",
    },
    "ja": {
        "shipped.subject": "{seller}：ご注文 {order} を発送しました",
        "shipped.intro": "ご注文 {order} の商品を発送しました。",
        "out_for_delivery.subject": "{seller}：お荷物は配達中です",
        "out_for_delivery.intro": "ご注文 {order} のお荷物は本日配達予定です。",
        "available_for_pickup.subject": "{seller}：お荷物の受け取りが可能です",
        "available_for_pickup.intro": "ご注文 {order} のお荷物は受取場所に到着しています。",
        "delivered.subject": "{seller}：お荷物をお届けしました",
        "delivered.intro": "ご注文 {order} のお荷物の配達が完了しました。",
        "exception.subject": "{seller}：お荷物の配達に問題が発生しました",
        "exception.intro": "配送業者から、ご注文 {order} のお荷物の配達に問題があったと報告がありました。",
        "greeting": "{name} 様",
        "greeting_anonymous": "お客様",
        "tracking_number": "追跡番号",
        "carrier": "配送業者",
        "eta": "お届け予定日：{date}",
        "track": "配送状況を確認",
        "contact": "ご不明な点は {seller} までお問い合わせください：{contact}",
        "unsubscribe": "このお荷物に関するメールを停止",
        "why": "{seller} でご注文いただいたため、このメールをお送りしています。",
    },
}

_PRIMARY = {"zh": "zh-Hans", "es": "es", "fr": "fr", "de": "de", "ru": "ru", "pt": "pt", "ja": "ja", "en": "en"}


def pick_language(locale: str | None) -> str:
    """One of MESSAGES for a customer locale: zh, zh-CN, zh_Hans -> zh-Hans; pt-BR -> pt; else en.

    Traditional Chinese (zh-Hant, zh-TW, zh-HK) has no table, and simplified Chinese is a
    poorer guess for it than English, so it falls back to English."""
    if not locale:
        return DEFAULT
    parts = locale.strip().replace("_", "-").lower().split("-")
    if parts[0] == "zh" and any(p in ("hant", "tw", "hk", "mo") for p in parts[1:]):
        return DEFAULT
    return _PRIMARY.get(parts[0], DEFAULT)


def text(language: str, key: str, **values: str) -> str:
    table = MESSAGES.get(language, MESSAGES[DEFAULT])
    return table.get(key, MESSAGES[DEFAULT][key]).format(**values)


#: the unsubscribe page: heading, question, button, done, invalid link
PAGE: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Email updates",
        "ask": "Stop emails from {seller} about parcel {number}?",
        "confirm": "Unsubscribe",
        "done": "Done: you will get no more emails about parcel {number}.",
        "invalid": "This unsubscribe link is not valid.",
    },
    "zh-Hans": {
        "heading": "邮件通知",
        "ask": "不再接收 {seller} 关于包裹 {number} 的邮件？",
        "confirm": "退订",
        "done": "已退订：您将不再收到包裹 {number} 的邮件。",
        "invalid": "此退订链接无效。",
    },
    "es": {
        "heading": "Avisos por correo",
        "ask": "¿Dejar de recibir correos de {seller} sobre el paquete {number}?",
        "confirm": "Darme de baja",
        "done": "Listo: no recibirás más correos sobre el paquete {number}.",
        "invalid": "Este enlace de baja no es válido.",
    },
    "fr": {
        "heading": "Notifications par e-mail",
        "ask": "Ne plus recevoir d'e-mails de {seller} pour le colis {number} ?",
        "confirm": "Se désabonner",
        "done": "C'est fait : vous ne recevrez plus d'e-mails pour le colis {number}.",
        "invalid": "Ce lien de désabonnement n'est pas valide.",
    },
    "de": {
        "heading": "E-Mail-Benachrichtigungen",
        "ask": "Keine E-Mails mehr von {seller} zur Sendung {number} erhalten?",
        "confirm": "Abmelden",
        "done": "Erledigt: Sie erhalten keine E-Mails mehr zur Sendung {number}.",
        "invalid": "Dieser Abmeldelink ist nicht gültig.",
    },
    "ru": {
        "heading": "Уведомления по почте",
        "ask": "Не получать письма от {seller} о посылке {number}?",
        "confirm": "Отписаться",
        "done": "Готово: писем о посылке {number} больше не будет.",
        "invalid": "Эта ссылка для отписки недействительна.",
    },
    "pt": {
        "heading": "Avisos por e-mail",
        "ask": "Deixar de receber e-mails de {seller} sobre o pacote {number}?",
        "confirm": "Cancelar inscrição",
        "done": "Pronto: você não receberá mais e-mails sobre o pacote {number}.",
        "invalid": "Este link de cancelamento não é válido.",
    },
    "ja": {
        "heading": "メール通知",
        "ask": "{seller} からのお荷物 {number} に関するメールを停止しますか？",
        "confirm": "配信停止",
        "done": "お荷物 {number} に関するメールの配信を停止しました。",
        "invalid": "この配信停止リンクは無効です。",
    },
}


def page_text(language: str, key: str, **values: str) -> str:
    return PAGE.get(language, PAGE[DEFAULT])[key].format(**values)
