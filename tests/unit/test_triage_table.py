"""Table-driven triage over realistic reports and complaints in 繁體, 简体 and English.

Each case names the severity, flow, responsible unit and the exact rules expected to
fire, with the reasoning (DOMAIN.md triage table) in a comment. Rules live in
hotline/data/triage_rules.toml; units in units.toml, leaders in leaders.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hotline.triage import TriageInput, default_engine

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    category: str
    unit: str | None
    payload: dict[str, Any]
    severity: str
    responsible: str
    rules: frozenset[str]
    real_name: bool = False


def case(id: str, kind: str, category: str, unit: str | None, payload: dict[str, Any],
         severity: str, responsible: str, rules: set[str], real_name: bool = False) -> Case:
    return Case(id, kind, category, unit, payload, severity, responsible, frozenset(rules),
                real_name)


R, C = "report", "complaint"
CASES = [
    # Named subject is the GD general manager (leader) → major and graded up to HQ; the
    # amount 壹仟萬 (10 M, Chinese capital numerals) also reaches the group threshold.
    case("r01-gd-gm-kickback-trad", R, "corruption", "GD",
         {"description": "廣東公司總經理在設備採購中收受供應商回扣，金額約壹仟萬元。",
          "subjects": [{"name": "陳國強", "unit": "GD", "position": "總經理"}]},
         "major", "HQ", {"report.subject.leader", "report.amount.above-threshold",
                         "report.misconduct.corruption"}),
    # No subjects field: "四川公司董事长" in the text places a leader of SC → HQ.
    # Real name → priority; real name + leader subject → medium risk (no raise).
    case("r02-sc-chair-simplified-text", R, "corruption", "SC",
         {"description": "四川公司董事长张涛长期安排亲属经商，通过关联交易输送利益。",
          "identity": {"name": "王某"}},
         "major", "HQ", {"report.subject.leader", "report.misconduct.corruption",
                         "report.real-name.priority"}, real_name=True),
    # English; the head (president) of a subsidiary is its leader → the level above is GD.
    # RMB 3.2 M alone would be "moderate" (high); the leader rule makes it major.
    case("r03-design-institute-president-en", R, "fraud", None,
         {"description": "The president of the Guangdong design institute approved fake "
                         "invoices worth RMB 3,200,000 for consultancy that never happened."},
         "major", "GD", {"report.subject.leader", "report.amount.moderate",
                         "report.misconduct.corruption"}),
    # Leader of the root unit: nobody above inside the group → stays at HQ, flagged for
    # referral to the supervising body (referral_outside, asserted separately).
    case("r04-hq-chairman", R, "corruption", "HQ",
         {"description": "集团董事长王志刚违规收受礼金。",
          "subjects": [{"name": "王志刚", "unit": "HQ", "position": "董事长"}]},
         "major", "HQ", {"report.subject.leader", "report.misconduct.corruption",
                         "report.misconduct.procedural"}),
    # Middle manager (项目经理) → high; small amount (5万) adds only a general floor.
    # A subsidiary's discipline matters are handled by its province (GD).
    case("r05-project-manager-small", R, "corruption", "GD-CONSTRUCTION",
         {"description": "项目经理何某向分包商索要好处费5万元。",
          "subjects": [{"name": "何某", "unit": "GD-CONSTRUCTION", "position": "项目经理"}]},
         "high", "GD", {"report.subject.middle-manager", "report.amount.small",
                        "report.misconduct.corruption"}),
    # 部門經理 (traditional) → middle manager; 三百五十萬 = 3.5 M → moderate: high.
    case("r06-dept-manager-trad-moderate", R, "fraud", "BJ",
         {"description": "北京公司財務部門經理虛開發票，涉及金額約三百五十萬元。"},
         "high", "BJ", {"report.subject.middle-manager", "report.amount.moderate",
                        "report.misconduct.corruption"}),
    # Individual misconduct with a small amount, no position → general.
    case("r07-clerk-misconduct-small", R, "conduct", "ZJ",
         {"description": "食堂采购员小刘多次报销私人餐费，累计约8000元。"},
         "general", "ZJ", {"report.amount.small", "report.misconduct.corruption"}),
    # "1200萬" without 元: still money (万 + no counting unit) → 12 M ≥ 10 M → major.
    case("r08-amount-digits-wan-major", R, "fraud", "JS",
         {"description": "江苏公司一名员工与外部人员串通，虚增工程量，造成损失1200萬。"},
         "major", "JS", {"report.amount.above-threshold", "report.misconduct.corruption"}),
    # USD 2 million ≈ RMB 14.2 M at the configured rate → above the group threshold.
    case("r09-amount-usd-major", R, "fraud", "OVERSEAS",
         {"description": "A procurement officer at the overseas company inflated invoices by "
                         "USD 2 million over two years."},
         "major", "OVERSEAS", {"report.amount.above-threshold",
                               "report.misconduct.corruption"}),
    # The structured amount field counts like an amount in the text.
    case("r10-amount-payload-major", R, "corruption", "HB",
         {"description": "采购人员收受供应商财物，详见附件。",
          "amount": {"value": 15000000, "currency": "CNY"}},
         "major", "HB", {"report.amount.above-threshold", "report.misconduct.corruption"}),
    # ¥3.5m (full-width yen, "m") → 3.5 M → moderate → high. "fictitious revenue" is
    # fraud in substance but names no misconduct keyword: the amount carries it.
    case("r11-amount-rmb-m-high", R, "fraud", "SH",
         {"description": "Staff in the Shanghai sales team booked fictitious revenue of ¥3.5m "
                         "to hit targets."},
         "high", "SH", {"report.amount.moderate"}),
    # Imminent danger to life (随时可能倒塌, workers underneath) → major.
    case("r12-imminent-collapse", R, "safety", "SC-ENERGY",
         {"description": "电站三号机组厂房外墙出现大面积裂缝，裂缝越来越大，随时可能倒塌，"
                         "下面还有工人作业。"},
         "major", "SC", {"report.danger.imminent", "report.safety.category"}),
    # Safety hazard without imminent danger (no harnesses, scaffolding) → high.
    case("r13-hazard-no-harness-en", R, "safety", "GD-CONSTRUCTION",
         {"description": "On the Foshan site workers routinely work at height without harnesses "
                         "and the scaffolding has not been inspected."},
         "high", "GD", {"report.safety.hazard", "report.safety.category"}),
    # 3 deaths → accident of 较大 grade → major (the cover-up words add a hazard floor).
    case("r14-deaths-three", R, "safety", "HN",
         {"description": "上月隧道施工发生透水事故，造成3人死亡，项目部瞒报为一般事故。"},
         "major", "HN", {"report.accident.deaths", "report.accident.casualties",
                         "report.safety.hazard", "report.safety.category"}),
    # 十二名工人重傷 (traditional, Chinese numerals) → 12 serious injuries ≥ 10 → major.
    case("r15-serious-injuries-trad", R, "safety", "YN",
         {"description": "雲南項目工地腳手架坍塌，十二名工人重傷，公司要求大家不要對外說。"},
         "major", "YN", {"report.accident.serious-injuries", "report.safety.hazard",
                         "report.safety.category"}),
    # Borderline: one death is below the 较大 grade → high (safety hazard, casualty).
    case("r16-one-death-high", R, "safety", "GZ",
         {"description": "贵州项目一名工人高空坠落身亡，现场未设置防护网。"},
         "high", "GZ", {"report.accident.casualties", "report.safety.hazard",
                        "report.safety.category"}),
    # Child labour (underage workers) → major; OVERSEAS-SEA is handled by OVERSEAS.
    case("r17-child-labour-en", R, "labour_rights", "OVERSEAS-SEA",
         {"description": "The subcontractor at the Jakarta plant employs underage workers, some "
                         "look 14 years old, in the packing line."},
         "major", "OVERSEAS", {"report.labour.child-or-forced"}),
    # Forced labour (扣押身份證, 不准離開) in traditional script → major.
    case("r18-forced-labour-trad", R, "labour_rights", "XJ",
         {"description": "分包商扣押工人身份證，不准離開工地，強迫每天工作十四個小時。"},
         "major", "XJ", {"report.labour.child-or-forced"}),
    # Wage arrears for 120 workers (≥ 30, policy) → many workers → major.
    case("r19-wage-many-digits", R, "wage_arrears", "HA",
         {"description": "河南某项目部拖欠120名农民工工资已经四个月，工人多次讨要无果。"},
         "major", "HA", {"report.wages.many-workers", "report.wages.many-workers-category",
                         "report.wages.project", "report.wages.category"}),
    # Wage arrears on one project, one crew → high.
    case("r20-wage-one-project", R, "wage_arrears", "AH",
         {"description": "安徽公司一个项目的劳务分包商拖欠我们班组的工钱，已经两个月没发了。"},
         "high", "AH", {"report.wages.project", "report.wages.category"}),
    # "Hundreds of workers … unpaid wages" filed as labour_rights → many workers (read
    # both as a count, ≥ 30, and as words) → major.
    case("r21-wage-many-words-en", R, "labour_rights", "GX",
         {"description": "Hundreds of workers on the Nanning metro project have unpaid wages "
                         "since spring; they are planning a protest at the gate."},
         "major", "GX", {"report.wages.many-workers", "report.wages.many-workers-words",
                         "report.wages.project"}),
    # 三十多名 (Chinese numeral + 多) = 30+ workers → major.
    case("r22-wage-30plus-trad", R, "wage_arrears", "FJ",
         {"description": "福建項目有三十多名工人的工資被拖欠半年。"},
         "major", "FJ", {"report.wages.many-workers", "report.wages.many-workers-category",
                         "report.wages.project", "report.wages.category"}),
    # Retaliation against a reporter (打击报复; transferred after reporting) → its own
    # category, major; the reported threat also makes the risk high.
    case("r23-retaliation-explicit", R, "conduct", "LN",
         {"description": "我去年实名举报了部门的违规招标问题，之后就被调岗降薪，"
                         "这是明显的打击报复。", "identity": {"name": "李某"}},
         "major", "LN", {"report.retaliation", "report.retaliation.adverse-action",
                         "report.retaliation-risk.high", "report.misconduct.corruption",
                         "report.misconduct.procedural", "report.real-name.priority"},
         real_name=True),
    # English retaliation: demoted after reporting → retaliation, major.
    case("r24-retaliation-en", R, "conduct", "HK",
         {"description": "After I reported the bid rigging to compliance I was demoted and my "
                         "bonus was cut. This is retaliation.", "identity": {"name": "Chan"}},
         "major", "HK", {"report.retaliation", "report.retaliation.adverse-action",
                         "report.retaliation-risk.high", "report.misconduct.corruption",
                         "report.real-name.priority"}, real_name=True),
    # Middle manager (high) + threats against reporters (扬言, 担心被报复) → retaliation
    # risk high → raised one level to major. Not a retaliation report: nothing happened yet.
    case("r25-threat-raises-middle", R, "corruption", "SD",
         {"description": "山东公司工程部经理在招标中搞围标串标，他扬言谁举报就让谁走人，"
                         "我很担心被报复。", "identity": {"name": "赵某"}},
         "major", "SD", {"report.subject.middle-manager", "report.retaliation-risk.high",
                         "report.misconduct.corruption", "report.real-name.priority"},
         real_name=True),
    # Procedural breach (未经招标, 程序不规范), no person of rank, no amount → general.
    case("r26-procedural-general", R, "other", "TJ",
         {"description": "天津公司办公楼装修项目未经招标直接发包，程序不规范。"},
         "general", "TJ", {"report.misconduct.procedural"}),
    # No substance: a few words, no allegation → low.
    case("r27-no-substance", R, "other", "NX",
         {"description": "他们都有问题。"},
         "low", "NX", {"report.no-substance"}),
    # Environmental misconduct with no trigger of the table → the report default, general.
    case("r28-environment-general", R, "environment", "QH",
         {"description": "青海项目夜间把施工废水直接排到附近河里，请派人查一下。"},
         "general", "QH", set()),
    # Data security, individual misconduct, no triggers → general; BJ-TECH → BJ.
    case("r29-data-security-general", R, "data_security", "BJ-TECH",
         {"description": "An engineer copies customer databases to a personal USB drive and "
                         "takes them home."},
         "general", "BJ", set()),
    # Borderline: the GM's office meeting decided a purchase a department head steered.
    # A leader word next to the allegation is read as a leader subject (conservative:
    # raising is automatic, lowering is an officer's decision) → major, up to HQ.
    case("r30-gm-meeting-borderline", R, "corruption", "HE",
         {"description": "河北公司总经理办公会上决定的采购项目，由综合部主任指定了供应商。"},
         "major", "HQ", {"report.subject.leader", "report.subject.middle-manager",
                         "report.misconduct.corruption"}),
    # Deputy GM (a member of the leadership) of HL, in English → major, to HQ.
    case("r31-deputy-gm-en", R, "corruption", "HL",
         {"description": "The deputy general manager of the Heilongjiang company accepted a "
                         "car from a supplier."},
         "major", "HQ", {"report.subject.leader"}),
    # 1.5亿元 = 150 M → major.
    case("r32-amount-yi", R, "fraud", "CQ",
         {"description": "重庆公司下属项目虚列成本1.5亿元，逃避审计。"},
         "major", "CQ", {"report.amount.above-threshold"}),
    # 两万元 = 20 000 → small → general.
    case("r33-amount-wan-small", R, "corruption", "GS",
         {"description": "甘肃公司某司机虚报加油费两万元。"},
         "general", "GS", {"report.amount.small", "report.misconduct.corruption"}),
    # Borderline: exactly RMB 10,000,000 is "at or above" the threshold → major.
    case("r34-threshold-exact", R, "fraud", "SX",
         {"description": "山西公司物资部门账外资金RMB 10,000,000未入账。"},
         "major", "SX", {"report.amount.above-threshold"}),
    # Borderline: 999.9万 is just under the threshold → moderate → high.
    case("r35-threshold-just-below", R, "fraud", "JX",
         {"description": "江西公司虚增合同价款999.9万元。"},
         "high", "JX", {"report.amount.moderate"}),
    # Borderline: 一百万元 = exactly 1 M → moderate → high.
    case("r36-moderate-exact", R, "corruption", "NM",
         {"description": "内蒙古公司某员工挪用公款一百万元炒股。"},
         "high", "NM", {"report.amount.moderate", "report.misconduct.corruption"}),
    # "千万别…" is a word, not ten million; no amount → general misconduct.
    case("r37-qianwan-not-amount", R, "corruption", "HI",
         {"description": "千万别小看这件事，海南公司出纳私自挪用备用金。"},
         "general", "HI", {"report.misconduct.corruption"}),
    # "our general manager" with no unit anywhere: a leader, but of no unit we can place
    # → major, handled at the root, not "escalated".
    case("r38-gm-unknown-unit-en", R, "corruption", None,
         {"description": "Our general manager takes kickbacks from every supplier."},
         "major", "HQ", {"report.subject.leader", "report.misconduct.corruption"}),
    # Site manager (English middle manager) ignoring a safety hazard → high.
    case("r39-site-manager-hazard-en", R, "safety", "ZJ",
         {"description": "The site manager ordered us to skip the gas test before entering the "
                         "tank; it is unsafe.",
          "subjects": [{"name": "Mr Xu", "unit": "ZJ", "position": "Site Manager"}]},
         "high", "ZJ", {"report.subject.middle-manager", "report.safety.hazard",
                        "report.safety.category"}),
    # Borderline: "随时可能销毁账本" (may destroy the books at any time) is no danger to
    # life; the 科长 (middle manager) taking kickbacks makes it high, not major.
    case("r40-any-time-not-danger", R, "corruption", "GD",
         {"description": "财务科长随时可能销毁账本，请尽快调查他收受回扣的问题。"},
         "high", "GD", {"report.subject.middle-manager", "report.misconduct.corruption"}),
    # Deformed scaffolding that may collapse with dozens working below → imminent → major.
    case("r41-scaffold-imminent", R, "safety", "SC",
         {"description": "脚手架已经严重变形，随时可能倒塌，下面每天有几十人施工。"},
         "major", "SC", {"report.danger.imminent", "report.safety.hazard",
                         "report.safety.category"}),
    # Numbers in English words: "a dozen … seriously injured" = 12 ≥ 10 → major.
    case("r42-english-number-words", R, "safety", "HB",
         {"description": "Two workers died and a dozen were seriously injured when the trench "
                         "collapsed; the site is still operating the same way."},
         "major", "HB", {"report.accident.serious-injuries", "report.accident.casualties",
                         "report.safety.hazard", "report.safety.category"}),
    # Complaints ------------------------------------------------------------------
    # Large outage (整個小區, 停電超過兩天; traditional) → major.
    case("c01-outage-large-trad", C, "service_quality", "GD",
         {"subject": "大面積停電", "description": "我們整個小區停電超過兩天，一直沒人處理。"},
         "major", "GD", {"complaint.outage.large", "complaint.service-quality"}),
    # Safety impact (sparks, exposed wires) → major.
    case("c02-safety-sparks-en", C, "construction_quality", "OVERSEAS",
         {"subject": "Sparks from meter box",
          "description": "The meter box your crew installed throws sparks when it rains; my "
                         "child almost touched the exposed wires."},
         "major", "OVERSEAS", {"complaint.safety-impact", "complaint.service-quality"}),
    # Media exposure threatened (电视台记者曝光) → major.
    case("c03-media-threat", C, "service_quality", "SN",
         {"subject": "装修质量差",
          "description": "你们施工的墙面一个月就开裂，再不处理我就找电视台记者曝光。"},
         "major", "SN", {"complaint.exposure.media", "complaint.service-quality"}),
    # Regulator involved (12315) → major.
    case("c04-regulator-12315", C, "billing", "ZJ",
         {"subject": "乱收费",
          "description": "莫名多收了三百元服务费，客服推诿，我已经向12315投诉。"},
         "major", "ZJ", {"complaint.exposure.regulator", "complaint.service-quality"}),
    # Legal action against the overseas unit → cross-border legal exposure → major;
    # "slips again" also reads as a repeated failure.
    case("c05-cross-border-legal-en", C, "delay", "OVERSEAS-SEA",
         {"subject": "Project delay",
          "description": "Our company in Singapore will start legal action if the handover "
                         "slips again; our lawyers have drafted the claim."},
         "major", "OVERSEAS-SEA", {"complaint.exposure.overseas-legal",
                                   "complaint.legal-threat", "complaint.repeated-failure",
                                   "complaint.service-quality"}),
    # Key account (战略客户) → high.
    case("c06-key-account", C, "service_quality", "JS",
         {"subject": "战略客户投诉",
          "description": "我司是贵公司的战略客户，专线故障响应太慢，影响生产。"},
         "high", "JS", {"complaint.key-account", "complaint.service-quality"}),
    # SLA breach with the contract's penalty clause → high.
    case("c07-sla-penalty-en", C, "service_quality", "SH",
         {"subject": "SLA breach",
          "description": "Response times breached the agreed SLA three months running; we will "
                         "apply the penalty clause from the contract."},
         "high", "SH", {"complaint.sla-penalty", "complaint.sla-compensation",
                        "complaint.service-quality"}),
    # Repeated failure (第三次) → high.
    case("c08-repeated-trad", C, "construction_quality", "FJ",
         {"subject": "漏水", "description": "屋頂漏水已經報修第三次了，每次修完下雨又漏。"},
         "high", "FJ", {"complaint.repeated-failure", "complaint.repeated-failure-count",
                        "complaint.service-quality"}),
    # Ordinary service-quality complaint → general.
    case("c09-ordinary-rude", C, "staff_conduct", "HN",
         {"subject": "客服态度差", "description": "营业厅工作人员态度恶劣，不耐烦。"},
         "general", "HN", {"complaint.service-quality"}),
    # Inquiry → low.
    case("c10-inquiry-en", C, "other", "HK",
         {"subject": "Question",
          "description": "Could you tell me how I can get a copy of last year's invoices? "
                         "Thanks."},
         "low", "HK", {"complaint.suggestion-or-inquiry"}),
    # Suggestion → low.
    case("c11-suggestion-zh", C, "other", "BJ",
         {"subject": "建议", "description": "建议在营业厅增加自助取号机，方便老人。"},
         "low", "BJ", {"complaint.suggestion-or-inquiry"}),
    # Borderline: phrased as a question but a grievance (多收, 很不满) → general.
    case("c12-question-with-grievance", C, "billing", "HA",
         {"subject": "请问",
          "description": "请问为什么这个月多收了两百元？客服一直没有答复，很不满。"},
         "general", "HA", {"complaint.grievance-with-question"}),
    # Outage for about 2000 households (≥ 500, policy) → large outage → major.
    case("c13-outage-households", C, "service_quality", "GX",
         {"subject": "停电", "description": "南宁青秀区约2000户停电一整晚。"},
         "major", "GX", {"complaint.outage.many-households", "complaint.service-quality"}),
    # Missed appointment, nothing else → general.
    case("c14-delay-ordinary-en", C, "delay", "SC",
         {"subject": "Installation late",
          "description": "The installation was scheduled for Monday but nobody came. Please "
                         "reschedule."},
         "general", "SC", {"complaint.service-quality"}),
    # Gas smell after the crew damaged a gas pipe (traditional) → safety impact → major.
    case("c15-gas-smell-trad", C, "construction_quality", "CQ",
         {"subject": "燃氣管道", "description": "你們施工時碰壞了燃氣管道，現在樓道裡有燃氣味。"},
         "major", "CQ", {"complaint.safety-impact", "complaint.service-quality"}),
    # Borderline: a single household's outage is not "large" → general.
    case("c16-single-outage-en", C, "service_quality", "TJ",
         {"subject": "Internet down",
          "description": "The broadband in my flat has been down since yesterday evening."},
         "general", "TJ", {"complaint.service-quality"}),
    # VIP customer (traditional) whose dedicated line failed for the fourth time → high.
    case("c17-vip-repeated-trad", C, "service_quality", "HK",
         {"subject": "專線中斷", "description": "本公司為VIP客戶，專線本月已經第四次中斷。"},
         "high", "HK", {"complaint.key-account", "complaint.repeated-failure",
                        "complaint.repeated-failure-count", "complaint.service-quality"}),
]

CASES += [
    # Borderline: "fire the technician" is no fire; a suggestion with a grievance (rude)
    # → general, not a safety impact.
    case("c18-fire-the-technician-en", C, "staff_conduct", "GD",
         {"subject": "Technician",
          "description": "I suggest you fire the rude technician who came yesterday."},
         "general", "GD", {"complaint.grievance-with-question"}),
    # Borderline: "再次感谢" (thanks again) is no repeated failure; a plain inquiry → low.
    case("c19-thanks-again-inquiry", C, "service_quality", "GD",
         {"subject": "套餐", "description": "再次感谢你们上次的帮助，这次想咨询一下套餐变更。"},
         "low", "GD", {"complaint.suggestion-or-inquiry"}),
]

FLOWS = {"major": "serious", "high": "serious", "general": "general", "low": "general"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_triage_table(case: Case) -> None:
    """Severity, flow, responsible unit and fired rules are as reasoned in the table."""
    result = default_engine().triage(TriageInput(
        kind=case.kind, category=case.category, channel="web",  # type: ignore[arg-type]
        payload=case.payload, real_name=case.real_name, unit=case.unit))
    assert (case.severity, FLOWS[case.severity], case.responsible, case.rules) == (
        result.severity, result.flow, result.responsible_unit, frozenset(result.rule_ids))


def test_the_table_is_big_and_mixed() -> None:
    """At least 40 cases, both kinds, every severity."""
    assert (True, {"report", "complaint"}, {"major", "high", "general", "low"}) == (
        len(CASES) >= 40, {c.kind for c in CASES}, {c.severity for c in CASES})
