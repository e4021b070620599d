"""Names in other scripts for the matching benchmark: native forms with the Latin spellings
a school office or a police officer might write for them (made-up people, common names)."""

from __future__ import annotations

# native form -> Latin spellings in use (the first is the commonest)
CYRILLIC_GIVEN = {
    "Анна": ("Anna",), "Мария": ("Maria", "Mariya"), "Иван": ("Ivan",),
    "Дмитрий": ("Dmitry", "Dmitriy", "Dmitri"), "Ольга": ("Olga",),
    "Наталья": ("Natalia", "Natalya"), "Сергей": ("Sergei", "Sergey"),
    "Алексей": ("Alexei", "Aleksei", "Alexey"), "Екатерина": ("Ekaterina", "Yekaterina"),
    "Михаил": ("Mikhail",), "Юлия": ("Yulia", "Iuliia", "Julia"), "Артём": ("Artem", "Artyom"),
}
CYRILLIC_FAMILY = {
    "Петрова": ("Petrova",), "Иванов": ("Ivanov",), "Смирнова": ("Smirnova",),
    "Кузнецов": ("Kuznetsov",), "Попова": ("Popova",), "Соколов": ("Sokolov",),
    "Лебедева": ("Lebedeva",), "Козлов": ("Kozlov",), "Новикова": ("Novikova",),
    "Морозов": ("Morozov",), "Шевченко": ("Shevchenko", "Shevchenco"),
    "Ковальчук": ("Kovalchuk", "Kowalczuk"),
}
ARABIC_GIVEN = {
    "محمد": ("Mohammed", "Muhammad", "Mohamed"), "فاطمة": ("Fatima", "Fatimah"),
    "علي": ("Ali",), "عمر": ("Omar", "Umar"), "يوسف": ("Yusuf", "Youssef", "Yousef"),
    "مريم": ("Maryam", "Mariam"), "حسن": ("Hassan", "Hasan"), "زينب": ("Zainab", "Zaynab"),
    "عمران": ("Imran",), "سارة": ("Sara", "Sarah"),
}
ARABIC_FAMILY = {
    "حداد": ("Haddad",), "منصور": ("Mansour", "Mansur"), "خان": ("Khan",),
    "حسين": ("Hussain", "Hussein", "Husain"), "رحمن": ("Rahman",), "أحمد": ("Ahmed", "Ahmad"),
    "قريشي": ("Qureshi", "Kureshi"), "صديقي": ("Siddiqui", "Siddiqi"),
}
CHINESE_GIVEN = {
    "小明": ("Xiaoming",), "伟": ("Wei",), "芳": ("Fang",), "静": ("Jing",), "磊": ("Lei",),
    "婷": ("Ting",), "子涵": ("Zihan",), "浩然": ("Haoran",), "欣怡": ("Xinyi",),
    "宇轩": ("Yuxuan",),
}
CHINESE_FAMILY = {
    "王": ("Wang",), "李": ("Li", "Lee"), "张": ("Zhang", "Chang"), "刘": ("Liu",),
    "陈": ("Chen", "Chan"), "杨": ("Yang",), "黄": ("Huang", "Wong"), "赵": ("Zhao",),
    "吴": ("Wu",), "周": ("Zhou", "Chow"),
}
SCRIPTS = (
    (CYRILLIC_GIVEN, CYRILLIC_FAMILY),
    (ARABIC_GIVEN, ARABIC_FAMILY),
    (CHINESE_GIVEN, CHINESE_FAMILY),
)
