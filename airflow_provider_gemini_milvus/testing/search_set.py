"""
A small labelled search set, shipped for the tests and the docs: the support knowledge base of a maker of
pumps, boilers and controllers (39 documents) and 12 labelled queries, half plain-language questions, half
exact terms (product, part and error codes, people's names).

It is built for the Gemini emulator's vectors (:mod:`.gemini_emulator.vectors`: words and character
3-grams hashed, no idf), so that the three search modes differ the way they do on real text. With
``gemini-embedding-001`` at ``output_dimensionality=768`` (documents as ``RETRIEVAL_DOCUMENT``, queries as
``RETRIEVAL_QUERY``, cosine), Milvus BM25 with the ``standard`` analyzer, and reciprocal rank fusion
(k=60, 10 hits per side):

- on the exact-term queries of :data:`EXACT_TERM_QUERIES`, dense search ranks the relevant document below
  the top 3: short documents about the same things in other words (``vibrating pumps``, ``leaking
  seals``) and with other numbers come first, while the relevant document mentions the code three times
  inside longer text about something else. Full-text search ranks it first (the code is a rare term), and
  hybrid search keeps it in its top 3;
- on the plain-language questions dense search ranks the relevant document first; full-text search, which
  also counts ``how``, ``do`` and ``I``, sometimes prefers the frequently-asked-questions documents;
- so over the whole set hybrid search scores the best nDCG@10, then full text, then dense.

``tests/testing/test_search_set.py`` checks all of it. Each document is ``{"id", "text", "metadata":
{"topic"}}``, the rows :class:`~airflow_provider_gemini_milvus.operators.GeminiEmbedOperator` takes; each
query is ``{"query", "relevant": [ids]}``, the form
:func:`~airflow_provider_gemini_milvus.retrieval.labelled.labelled_queries` reads.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXACT_TERM_QUERIES", "SEARCH_DOCUMENTS", "SEARCH_QUERIES"]


def _doc(identifier: str, topic: str, text: str) -> dict[str, Any]:
    return {"id": identifier, "text": text, "metadata": {"topic": topic}}


#: The knowledge base: ``{"id": "kb-001", "text": ..., "metadata": {"topic": "pumps"}}``.
SEARCH_DOCUMENTS: list[dict[str, Any]] = [
    _doc(
        "kb-001",
        "pumps",
        "Vibrating pumps at 2900 rpm: vibrations and noises often come from loose feet or a worn coupling.",
    ),
    _doc(
        "kb-002",
        "pumps",
        "Noisy pumps that vibrate after 1450 hours of pumping need their impellers balanced.",
    ),
    _doc(
        "kb-003",
        "pumps",
        "Vibrations and noises in pumping sets since 2019: check the grouting under every pumping set.",
    ),
    _doc(
        "kb-004",
        "pumps",
        "A grinding noise from the pump means worn bearings: replace the bearings before the shaft is "
        "damaged.",
    ),
    _doc(
        "kb-005",
        "pumps",
        "Cavitation sounds like gravel in the impeller housing: raise the suction pressure or lower the "
        "flow.",
    ),
    _doc(
        "kb-006",
        "pumps",
        "Priming a pump: fill the casing with water and open the vent until no air comes out.",
    ),
    _doc(
        "kb-007",
        "shipping",
        "Shipping note for order 88213: the crate holds one PX-4410 with its motor, the base frame, a spare"
        " impeller and the commissioning checklist. Lift the PX-4410 crate with a forklift from the marked "
        "side only, store it indoors on dry pallets away from frost, and keep the desiccant bags inside "
        "until the installer arrives. Customs papers, the packing list and the test certificate travel in "
        "an envelope taped to the lid. The PX-4410 manual is in the door pocket. Report transport damage to"
        " the carrier within three days, photograph the tilt indicator before signing the delivery receipt,"
        " and recycle the timber through the local depot; our drivers cannot take packaging back.",
    ),
    _doc(
        "kb-008",
        "parts",
        "Leaking seals: sealing kits since 2018 stop leaks.",
    ),
    _doc(
        "kb-009",
        "parts",
        "Seals leaking after 3000 hours: fit one of the sealing kits and renew the sleeves.",
    ),
    _doc(
        "kb-010",
        "parts",
        "Leaks from seals since 2020: kits with sealing rings and springs.",
    ),
    _doc(
        "kb-011",
        "parts",
        "Spare parts list for the yearly service of a boiler room: two filter cartridges, one gasket set, "
        "grease for the motor bearings, a thermostat probe, the SK-9130 kit, fuses for the control panel, a"
        " pressure gauge, fresh inhibitor for the heating circuit, a roll of insulation tape and cleaning "
        "rags. The SK-9130 set ships from the central warehouse in Trondheim; order SK-9130 together with "
        "the rest to save on freight. Technicians should also pack a torch, a multimeter, spare batteries, "
        "gloves, goggles and the logbook, and check the expiry date of the descaling chemicals before "
        "leaving.",
    ),
    _doc(
        "kb-012",
        "filters",
        "Cartridges clog: filters clogging after 2020 need a coarser filtering grade.",
    ),
    _doc(
        "kb-013",
        "filters",
        "Filtering cartridges that clog within 300 hours point to silt; fit filters with more area.",
    ),
    _doc(
        "kb-014",
        "filters",
        "Filters and cartridges clogging after the 2021 floods: fit coarser filtering cartridges.",
    ),
    _doc(
        "kb-015",
        "filters",
        "Replace filter cartridges every six months, or sooner when the differential pressure rises.",
    ),
    _doc(
        "kb-016",
        "filters",
        "Water treatment plants that run on river water see more silt after heavy rain and snow melt. Flush"
        " the strainers weekly, log the turbidity and the inlet temperature, and fit an FL-0620 in the "
        "inlet line when silt passes the standard mesh; the FL-0620 holds fine silt back for a whole "
        "season, and a spare FL-0620 belongs in every plant store before autumn floods arrive. Operators "
        "should compare readings with the upstream gauging station, note algae blooms in summer, and ask "
        "the laboratory for a sediment analysis when the colour of the raw water changes.",
    ),
    _doc(
        "kb-017",
        "controller",
        "Controllers with errors 2201 to 2206 report supply faults; measure the voltage.",
    ),
    _doc(
        "kb-018",
        "controller",
        "Errors 2208 and 2209 on controllers mean the cabinet fan has stopped.",
    ),
    _doc(
        "kb-019",
        "controller",
        "Controllers log errors with a 4-digit code such as 2270 for a lost sensor.",
    ),
    _doc(
        "kb-020",
        "controller",
        "Firmware update of the CT-900: download the package, copy it to a USB stick and hold the menu key "
        "while powering up. Do not switch off during the update; if power is lost the display shows E-2207 "
        "and E-2207 stays until the update is started again from the USB stick.",
    ),
    _doc(
        "kb-021",
        "controller",
        "A blank controller screen after switching on: check the ribbon cable and the display fuse.",
    ),
    _doc(
        "kb-022",
        "boilers",
        "Descaling the boiler: circulate descaler through the heat exchanger for two hours, then flush.",
    ),
    _doc(
        "kb-023",
        "boilers",
        "Boiler pressure drops overnight: look for a leaking safety valve or expansion vessel.",
    ),
    _doc(
        "kb-024",
        "boilers",
        "The burner will not ignite: check the gas supply and the ignition electrode.",
    ),
    _doc(
        "kb-025",
        "hydraulics",
        "Bleeding hydraulic lines: open the bleed screws one by one until the oil runs clear of air.",
    ),
    _doc(
        "kb-026",
        "installation",
        "Flange bolts: tighten them crosswise to 45 Nm, then to 90 Nm.",
    ),
    _doc(
        "kb-027",
        "installation",
        "Anchor bolts for the base frame: drill, clean and set the anchors in resin.",
    ),
    _doc(
        "kb-028",
        "faq",
        "How do I register for the customer portal? Open the portal and ask for an invitation.",
    ),
    _doc(
        "kb-029",
        "faq",
        "How do I order spare parts? Use the portal basket, or email the parts desk.",
    ),
    _doc(
        "kb-030",
        "faq",
        "What is the warranty period? Two years from delivery, five years on the casing.",
    ),
    _doc(
        "kb-031",
        "faq",
        "Why does my invoice show freight? Orders under 200 euros carry a freight charge.",
    ),
    _doc(
        "kb-032",
        "service",
        "Site visits: a field engineer visits your site within five working days.",
    ),
    _doc(
        "kb-033",
        "service",
        "Emergency visits: call the hotline and a field engineer comes the same day.",
    ),
    _doc(
        "kb-034",
        "training",
        "Commissioning training for new customers is held each spring in the Bergen workshop. Ingrid "
        "Solheim teaches the alignment and start-up modules; bring safety shoes and a laptop with the "
        "configuration tool.",
    ),
    _doc(
        "kb-035",
        "service",
        "Tomasz Wieczorek leads the support desk and answers warranty questions.",
    ),
    _doc(
        "kb-036",
        "warranty",
        "Warranty claims need the serial number, the invoice and photos of the damage.",
    ),
    _doc(
        "kb-037",
        "safety",
        "Lock out and tag out the motor supply before opening any casing or valve.",
    ),
    _doc(
        "kb-038",
        "valves",
        "A sticking control valve: clean the valve stem and replace the packing.",
    ),
    _doc(
        "kb-039",
        "valves",
        "Safety valve testing: lift the lever once a year to check that the valve opens.",
    ),
]

#: The labelled queries: six exact terms, then six plain-language questions; one relevant id each.
SEARCH_QUERIES: list[dict[str, Any]] = [
    {"query": "PX-4410 pump vibration", "relevant": ["kb-007"]},
    {"query": "SK-9130 seal kit leak", "relevant": ["kb-011"]},
    {"query": "FL-0620 filter cartridge clogged", "relevant": ["kb-016"]},
    {"query": "E-2207 controller error", "relevant": ["kb-020"]},
    {"query": "Ingrid Solheim", "relevant": ["kb-034"]},
    {"query": "Tomasz Wieczorek", "relevant": ["kb-035"]},
    {"query": "how do I descale the boiler?", "relevant": ["kb-022"]},
    {"query": "why does my pump make a grinding noise?", "relevant": ["kb-004"]},
    {"query": "how often do I replace filter cartridges?", "relevant": ["kb-015"]},
    {"query": "how do I bleed the air out of hydraulic lines?", "relevant": ["kb-025"]},
    {"query": "why is the controller screen blank?", "relevant": ["kb-021"]},
    {"query": "what is the torque for flange bolts?", "relevant": ["kb-026"]},
]

#: The exact-term queries dense search misses (relevant document below its top 3) and full-text search
#: ranks first: query text -> the relevant id.
EXACT_TERM_QUERIES: dict[str, str] = {
    "PX-4410 pump vibration": "kb-007",
    "SK-9130 seal kit leak": "kb-011",
    "FL-0620 filter cartridge clogged": "kb-016",
    "E-2207 controller error": "kb-020",
}
