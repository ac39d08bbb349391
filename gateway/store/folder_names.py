"""Display names of the default folders in each store language.

The names are the ones Outlook and Exchange give a mailbox created in that
language. Only folders a user sees are translated; the internal folders of
the non-IPM part of a store (Views, Finder, Spooler Queue, ...) keep their
English names in every language, as Exchange does. A folder without a
translation falls back to English, and so does an unknown language.
"""

from __future__ import annotations

from gateway.store.special import Private, Public

LANGUAGES = frozenset({"en", "de", "fr", "es", "it"})
DEFAULT_LANGUAGE = "en"

_P = Private
ENGLISH: dict[Private, str] = {
    _P.ROOT: "Root Container",
    _P.DEFERRED_ACTION: "Deferred Action",
    _P.SPOOLER_QUEUE: "Spooler Queue",
    _P.SHORTCUTS: "Shortcuts",
    _P.FINDER: "Finder",
    _P.VIEWS: "Views",
    _P.COMMON_VIEWS: "Common Views",
    _P.SCHEDULE: "Schedule",
    _P.IPM_SUBTREE: "Top of Information Store",
    _P.SENT_ITEMS: "Sent Items",
    _P.DELETED_ITEMS: "Deleted Items",
    _P.OUTBOX: "Outbox",
    _P.INBOX: "Inbox",
    _P.DRAFTS: "Drafts",
    _P.CALENDAR: "Calendar",
    _P.JOURNAL: "Journal",
    _P.NOTES: "Notes",
    _P.TASKS: "Tasks",
    _P.CONTACTS: "Contacts",
    _P.QUICK_CONTACTS: "Quick Contacts",
    _P.IM_CONTACT_LIST: "IM Contact List",
    _P.GAL_CONTACTS: "GAL Contacts",
    _P.JUNK: "Junk Email",
    _P.LOCAL_FREEBUSY: "Freebusy Data",
    _P.SYNC_ISSUES: "Sync Issues",
    _P.CONFLICTS: "Conflicts",
    _P.LOCAL_FAILURES: "Local Failures",
    _P.SERVER_FAILURES: "Server Failures",
    _P.CONVERSATION_ACTION_SETTINGS: "Conversation Action Settings",
    _P.QUICK_STEP_SETTINGS: "Quick Step Settings",
    _P.SUGGESTED_CONTACTS: "Suggested Contacts",
    _P.REMINDERS: "Reminders",
    _P.ARCHIVE: "Archive",
    _P.RSS_FEEDS: "RSS Feeds",
    _P.YAMMER_ROOT: "Yammer Root",
    _P.FILES: "Files",
    _P.CONTACTS_SEARCH: "Contact Search",
}

TRANSLATIONS: dict[str, dict[Private, str]] = {
    "de": {
        _P.INBOX: "Posteingang",
        _P.OUTBOX: "Postausgang",
        _P.SENT_ITEMS: "Gesendete Elemente",
        _P.DELETED_ITEMS: "Gelöschte Elemente",
        _P.DRAFTS: "Entwürfe",
        _P.CALENDAR: "Kalender",
        _P.CONTACTS: "Kontakte",
        _P.TASKS: "Aufgaben",
        _P.NOTES: "Notizen",
        _P.JOURNAL: "Journal",
        _P.JUNK: "Junk-E-Mail",
        _P.SYNC_ISSUES: "Synchronisierungsprobleme",
        _P.CONFLICTS: "Konflikte",
        _P.LOCAL_FAILURES: "Lokale Fehler",
        _P.SERVER_FAILURES: "Serverfehler",
        _P.CONVERSATION_ACTION_SETTINGS: "Einstellungen für Konversationsaktionen",
        _P.QUICK_STEP_SETTINGS: "Einstellungen für QuickSteps",
        _P.SUGGESTED_CONTACTS: "Vorgeschlagene Kontakte",
        _P.QUICK_CONTACTS: "Schnellkontakte",
        _P.REMINDERS: "Erinnerungen",
        _P.ARCHIVE: "Archiv",
        _P.RSS_FEEDS: "RSS-Feeds",
    },
    "fr": {
        _P.INBOX: "Boîte de réception",
        _P.OUTBOX: "Boîte d'envoi",
        _P.SENT_ITEMS: "Éléments envoyés",
        _P.DELETED_ITEMS: "Éléments supprimés",
        _P.DRAFTS: "Brouillons",
        _P.CALENDAR: "Calendrier",
        _P.CONTACTS: "Contacts",
        _P.TASKS: "Tâches",
        _P.NOTES: "Notes",
        _P.JOURNAL: "Journal",
        _P.JUNK: "Courrier indésirable",
        _P.SYNC_ISSUES: "Problèmes de synchronisation",
        _P.CONFLICTS: "Conflits",
        _P.LOCAL_FAILURES: "Échecs locaux",
        _P.SERVER_FAILURES: "Échecs du serveur",
        _P.CONVERSATION_ACTION_SETTINGS: "Paramètres des actions de conversation",
        _P.QUICK_STEP_SETTINGS: "Paramètres des actions rapides",
        _P.SUGGESTED_CONTACTS: "Contacts suggérés",
        _P.QUICK_CONTACTS: "Contacts rapides",
        _P.REMINDERS: "Rappels",
        _P.ARCHIVE: "Archive",
        _P.RSS_FEEDS: "Flux RSS",
    },
    "es": {
        _P.INBOX: "Bandeja de entrada",
        _P.OUTBOX: "Bandeja de salida",
        _P.SENT_ITEMS: "Elementos enviados",
        _P.DELETED_ITEMS: "Elementos eliminados",
        _P.DRAFTS: "Borradores",
        _P.CALENDAR: "Calendario",
        _P.CONTACTS: "Contactos",
        _P.TASKS: "Tareas",
        _P.NOTES: "Notas",
        _P.JOURNAL: "Diario",
        _P.JUNK: "Correo no deseado",
        _P.SYNC_ISSUES: "Problemas de sincronización",
        _P.CONFLICTS: "Conflictos",
        _P.LOCAL_FAILURES: "Errores locales",
        _P.SERVER_FAILURES: "Errores del servidor",
        _P.CONVERSATION_ACTION_SETTINGS: "Configuración de acciones de conversación",
        _P.QUICK_STEP_SETTINGS: "Configuración de Pasos rápidos",
        _P.SUGGESTED_CONTACTS: "Contactos sugeridos",
        _P.QUICK_CONTACTS: "Contactos rápidos",
        _P.REMINDERS: "Recordatorios",
        _P.ARCHIVE: "Archivo",
        _P.RSS_FEEDS: "Fuentes RSS",
    },
    "it": {
        _P.INBOX: "Posta in arrivo",
        _P.OUTBOX: "Posta in uscita",
        _P.SENT_ITEMS: "Posta inviata",
        _P.DELETED_ITEMS: "Posta eliminata",
        _P.DRAFTS: "Bozze",
        _P.CALENDAR: "Calendario",
        _P.CONTACTS: "Contatti",
        _P.TASKS: "Attività",
        _P.NOTES: "Note",
        _P.JOURNAL: "Diario",
        _P.JUNK: "Posta indesiderata",
        _P.SYNC_ISSUES: "Problemi di sincronizzazione",
        _P.CONFLICTS: "Conflitti",
        _P.LOCAL_FAILURES: "Errori locali",
        _P.SERVER_FAILURES: "Errori del server",
        _P.CONVERSATION_ACTION_SETTINGS: "Impostazioni azioni conversazione",
        _P.QUICK_STEP_SETTINGS: "Impostazioni azioni rapide",
        _P.SUGGESTED_CONTACTS: "Contatti suggeriti",
        _P.QUICK_CONTACTS: "Contatti rapidi",
        _P.REMINDERS: "Promemoria",
        _P.ARCHIVE: "Archivio",
        _P.RSS_FEEDS: "Feed RSS",
    },
}

PUBLIC: dict[Public, str] = {
    Public.ROOT: "Root Container",
    Public.IPM_SUBTREE: "IPM_SUBTREE",
    Public.NON_IPM_SUBTREE: "NON_IPM_SUBTREE",
    Public.EFORMS_REGISTRY: "EFORMS REGISTRY",
}
"""A public store's fixed folders: their names are protocol constants, never translated."""


def normal_language(language: str | None) -> str:
    """``de_DE``, ``de-AT``, ``DE`` or ``de_DE.UTF-8`` → ``de``; unknown ones → ``en``."""
    if not language:
        return DEFAULT_LANGUAGE
    code = language.strip().lower().replace("-", "_").split(".")[0].split("_")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def folder_name(folder: Private | Public, language: str | None = None) -> str:
    """The display name of a default folder in ``language`` (English when untranslated)."""
    if isinstance(folder, Public):
        return PUBLIC[folder]
    translated = TRANSLATIONS.get(normal_language(language), {})
    return translated.get(folder) or ENGLISH[folder]
