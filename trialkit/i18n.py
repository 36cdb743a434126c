"""The engine's own words in the site workbooks, in the six languages sites read.

The upload template and the query workbook speak to site coordinators in their language
(``[[sites]] language`` in ``study.toml``). Two sources of text:

- this catalogue: the engine's boilerplate (instructions, hints, headings, summary labels), for
  every language in :data:`LANGUAGES`;
- the study's ``translations/`` folder: the trial's own words (form and variable labels, what one
  record is, missing-value meanings, the contact line) — see :mod:`trialkit.study.translations`.

English is the fallback per string. Codes, variable names and values are never translated: they are
what the importer reads back.

Example::

    >>> text("tpl.h.dates", "de")
    'Datumsangaben'
    >>> text("hint.list", "it", n=15)
    'elenco: 15 codici'
    >>> text("hint.list", "xx", n=3)  # an unknown language falls back to English
    'list: 3 codes'
"""

from __future__ import annotations

from typing import Any

#: The languages of the site workbooks; English first (the fallback).
LANGUAGES: tuple[str, ...] = ("en", "it", "fr", "de", "nl", "es")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "it": "Italian", "fr": "French", "de": "German", "nl": "Dutch",
                  "es": "Spanish"}


def _t(en: str, it: str, fr: str, de: str, nl: str, es: str) -> dict[str, str]:
    return {"en": en, "it": it, "fr": fr, "de": de, "nl": nl, "es": es}


CATALOGUE: dict[str, dict[str, str]] = {
    # -- upload template: the Instructions sheet --------------------------------------------------
    "tpl.title": _t(
        "{study} — site upload workbook",
        "{study} — cartella di lavoro per l'invio dei dati del centro",
        "{study} — classeur d'envoi des données du centre",
        "{study} — Arbeitsmappe für den Datenupload des Zentrums",
        "{study} — werkmap voor het uploaden van de centrumgegevens",
        "{study} — libro para la carga de datos del centro"),
    "tpl.study": _t("Study", "Studio", "Étude", "Studie", "Studie", "Estudio"),
    "tpl.protocol_version": _t("Protocol version", "Versione del protocollo", "Version du protocole",
                               "Protokollversion", "Protocolversie", "Versión del protocolo"),
    "tpl.template_version": _t("Template version", "Versione del modello", "Version du modèle",
                               "Vorlagenversion", "Sjabloonversie", "Versión de la plantilla"),
    "tpl.site": _t("Site", "Centro", "Centre", "Zentrum", "Centrum", "Centro"),
    "tpl.all_sites": _t("all sites (generic workbook)", "tutti i centri (cartella generica)",
                        "tous les centres (classeur générique)", "alle Zentren (allgemeine Arbeitsmappe)",
                        "alle centra (algemene werkmap)", "todos los centros (libro genérico)"),
    "tpl.h.fill": _t("How to fill in", "Come compilare", "Comment remplir", "So füllen Sie aus",
                     "Zo vult u in", "Cómo rellenar"),
    "tpl.rows": _t("Rows", "Righe", "Lignes", "Zeilen", "Rijen", "Filas"),
    "tpl.rows.text": _t(
        "Enter one row per record, starting in row {row} of the form's sheet, under the grey hint row; "
        "each sheet's title row says what one record is (see also the table of forms below).",
        "Inserire una riga per record, a partire dalla riga {row} del foglio della scheda, sotto la riga "
        "grigia dei suggerimenti; la riga del titolo di ogni foglio indica che cosa è un record (vedere "
        "anche la tabella delle schede qui sotto).",
        "Saisissez une ligne par enregistrement, à partir de la ligne {row} de la feuille du formulaire, "
        "sous la ligne grise d'aide ; la ligne de titre de chaque feuille indique ce qu'est un "
        "enregistrement (voir aussi le tableau des formulaires ci-dessous).",
        "Geben Sie pro Datensatz eine Zeile ein, ab Zeile {row} des Formularblatts, unter der grauen "
        "Hinweiszeile; die Titelzeile jedes Blatts sagt, was ein Datensatz ist (siehe auch die "
        "Formulartabelle unten).",
        "Vul één rij per record in, vanaf rij {row} van het formulierblad, onder de grijze hulprij; de "
        "titelrij van elk blad zegt wat één record is (zie ook de tabel met formulieren hieronder).",
        "Introduzca una fila por registro, a partir de la fila {row} de la hoja del formulario, debajo de "
        "la fila gris de ayuda; la fila de título de cada hoja indica qué es un registro (vea también la "
        "tabla de formularios más abajo)."),
    "tpl.sheets": _t("Sheets and headers", "Fogli e intestazioni", "Feuilles et en-têtes",
                     "Blätter und Kopfzeilen", "Bladen en kopregels", "Hojas y encabezados"),
    "tpl.sheets.text": _t(
        "Do not rename, move or delete sheets, and do not change the header rows (title, variable codes, "
        "labels and hints): they are protected.",
        "Non rinominare, spostare o eliminare i fogli e non modificare le righe di intestazione (titolo, "
        "codici delle variabili, etichette e suggerimenti): sono protette.",
        "Ne renommez, ne déplacez ni ne supprimez aucune feuille, et ne modifiez pas les lignes d'en-tête "
        "(titre, codes des variables, libellés et aides) : elles sont protégées.",
        "Blätter nicht umbenennen, verschieben oder löschen und die Kopfzeilen (Titel, Variablencodes, "
        "Bezeichnungen und Hinweise) nicht ändern: Sie sind geschützt.",
        "Bladen niet hernoemen, verplaatsen of verwijderen en de kopregels (titel, variabelecodes, labels "
        "en hulpteksten) niet wijzigen: ze zijn beveiligd.",
        "No cambie el nombre de las hojas, no las mueva ni las elimine, y no modifique las filas de "
        "encabezado (título, códigos de variable, etiquetas y ayudas): están protegidas."),
    "tpl.columns": _t("Columns", "Colonne", "Colonnes", "Spalten", "Kolommen", "Columnas"),
    "tpl.columns.text": _t(
        "Do not add, remove or reorder columns. Leave a sheet empty if you have nothing to report on that "
        "form.",
        "Non aggiungere, eliminare o riordinare le colonne. Lasciare vuoto un foglio se non c'è nulla da "
        "riportare su quella scheda.",
        "N'ajoutez, ne supprimez ni ne réordonnez aucune colonne. Laissez une feuille vide si vous n'avez "
        "rien à déclarer sur ce formulaire.",
        "Keine Spalten hinzufügen, entfernen oder umordnen. Lassen Sie ein Blatt leer, wenn es zu diesem "
        "Formular nichts zu melden gibt.",
        "Voeg geen kolommen toe, verwijder ze niet en verander de volgorde niet. Laat een blad leeg als u "
        "voor dat formulier niets te melden hebt.",
        "No añada, elimine ni reordene columnas. Deje una hoja vacía si no tiene nada que notificar en "
        "ese formulario."),
    "tpl.labels": _t("Labels and hints", "Etichette e suggerimenti", "Libellés et aides",
                     "Bezeichnungen und Hinweise", "Labels en hulpteksten", "Etiquetas y ayudas"),
    "tpl.labels.text": _t(
        "Under each variable code you find its label and a hint: required or not, type, unit and allowed "
        "values. Point at the code for the full note. Orange codes are required (always, or under the "
        "condition in the note); blue codes are optional.",
        "Sotto ogni codice di variabile si trovano la sua etichetta e un suggerimento: obbligatoria o no, "
        "tipo, unità e valori ammessi. Posizionare il puntatore sul codice per leggere la nota completa. "
        "I codici in arancione sono obbligatori (sempre, o alla condizione indicata nella nota); quelli in "
        "blu sono facoltativi.",
        "Sous chaque code de variable figurent son libellé et une aide : obligatoire ou non, type, unité et "
        "valeurs admises. Pointez le code pour lire la note complète. Les codes en orange sont "
        "obligatoires (toujours, ou à la condition indiquée dans la note) ; les codes en bleu sont "
        "facultatifs.",
        "Unter jedem Variablencode stehen seine Bezeichnung und ein Hinweis: Pflichtfeld oder nicht, Typ, "
        "Einheit und zulässige Werte. Zeigen Sie auf den Code, um die vollständige Notiz zu lesen. Orange "
        "Codes sind Pflichtfelder (immer oder unter der in der Notiz genannten Bedingung); blaue Codes "
        "sind optional.",
        "Onder elke variabelecode staan het label en een hulptekst: verplicht of niet, type, eenheid en "
        "toegestane waarden. Wijs de code aan voor de volledige notitie. Oranje codes zijn verplicht "
        "(altijd, of onder de voorwaarde in de notitie); blauwe codes zijn optioneel.",
        "Debajo de cada código de variable están su etiqueta y una ayuda: obligatoria o no, tipo, unidad y "
        "valores permitidos. Sitúe el puntero sobre el código para leer la nota completa. Los códigos en "
        "naranja son obligatorios (siempre, o con la condición indicada en la nota); los azules son "
        "opcionales."),
    "tpl.lists": _t("Lists", "Elenchi", "Listes", "Listen", "Lijsten", "Listas"),
    "tpl.lists.text": _t(
        "Columns with a list offer a dropdown: choose the code from the list.",
        "Le colonne con un elenco offrono un menu a discesa: scegliere il codice dall'elenco.",
        "Les colonnes avec une liste proposent un menu déroulant : choisissez le code dans la liste.",
        "Spalten mit einer Liste bieten ein Auswahlmenü: Wählen Sie den Code aus der Liste.",
        "Kolommen met een lijst bieden een keuzelijst: kies de code uit de lijst.",
        "Las columnas con una lista ofrecen un desplegable: elija el código de la lista."),
    "tpl.checks": _t("Checks", "Controlli", "Contrôles", "Prüfungen", "Controles", "Controles"),
    "tpl.checks.text": _t(
        "Excel warns when a value is outside the list or range; choose Yes/OK only to keep a missing-value "
        "code. Every value is checked again on upload.",
        "Excel avvisa quando un valore è fuori dall'elenco o dall'intervallo; scegliere Sì/OK solo per "
        "mantenere un codice di valore mancante. Ogni valore viene ricontrollato al caricamento.",
        "Excel avertit lorsqu'une valeur est hors de la liste ou de l'intervalle ; choisissez Oui/OK "
        "uniquement pour garder un code de valeur manquante. Chaque valeur est vérifiée à nouveau lors de "
        "l'envoi.",
        "Excel warnt, wenn ein Wert außerhalb der Liste oder des Bereichs liegt; wählen Sie Ja/OK nur, um "
        "einen Code für fehlende Werte zu behalten. Jeder Wert wird beim Hochladen erneut geprüft.",
        "Excel waarschuwt als een waarde buiten de lijst of het bereik valt; kies Ja/OK alleen om een code "
        "voor een ontbrekende waarde te behouden. Elke waarde wordt bij het uploaden opnieuw "
        "gecontroleerd.",
        "Excel avisa cuando un valor está fuera de la lista o del intervalo; elija Sí/Aceptar solo para "
        "mantener un código de valor ausente. Cada valor se vuelve a comprobar al cargarlo."),
    "tpl.siteid.text": _t(
        "You may leave {var} blank: trialkit fills in site {site} on upload, as this workbook was made for "
        "your site.",
        "Si può lasciare vuoto {var}: al caricamento trialkit inserisce il centro {site}, perché questa "
        "cartella di lavoro è stata preparata per il vostro centro.",
        "Vous pouvez laisser {var} vide : trialkit indique le centre {site} lors de l'envoi, car ce classeur "
        "a été préparé pour votre centre.",
        "{var} darf leer bleiben: trialkit trägt beim Hochladen Zentrum {site} ein, da diese Arbeitsmappe "
        "für Ihr Zentrum erstellt wurde.",
        "U mag {var} leeg laten: trialkit vult bij het uploaden centrum {site} in, omdat deze werkmap voor "
        "uw centrum is gemaakt.",
        "Puede dejar {var} en blanco: trialkit rellena el centro {site} al cargar los datos, porque este "
        "libro se preparó para su centro."),
    "tpl.printing": _t("Printing", "Stampa", "Impression", "Drucken", "Afdrukken", "Impresión"),
    "tpl.printing.text": _t(
        "Each sheet prints one page wide with its header rows repeated; to print more rows, enlarge the "
        "print area.",
        "Ogni foglio si stampa su una pagina in larghezza con le righe di intestazione ripetute; per "
        "stampare più righe, ampliare l'area di stampa.",
        "Chaque feuille s'imprime sur une page en largeur, avec les lignes d'en-tête répétées ; pour "
        "imprimer plus de lignes, agrandissez la zone d'impression.",
        "Jedes Blatt wird eine Seite breit gedruckt, die Kopfzeilen werden wiederholt; um mehr Zeilen zu "
        "drucken, vergrößern Sie den Druckbereich.",
        "Elk blad wordt één pagina breed afgedrukt met herhaalde kopregels; vergroot het afdrukbereik om "
        "meer rijen af te drukken.",
        "Cada hoja se imprime en una página de ancho con las filas de encabezado repetidas; para imprimir "
        "más filas, amplíe el área de impresión."),
    "tpl.h.missing": _t("Missing values", "Valori mancanti", "Valeurs manquantes", "Fehlende Werte",
                        "Ontbrekende waarden", "Valores ausentes"),
    "tpl.missing.code": _t("{meaning} — type {code} instead of a value",
                           "{meaning} — digitare {code} al posto del valore",
                           "{meaning} — saisissez {code} à la place de la valeur",
                           "{meaning} — {code} statt eines Werts eingeben",
                           "{meaning} — typ {code} in plaats van een waarde",
                           "{meaning} — escriba {code} en lugar del valor"),
    "tpl.use": _t("Use", "Uso", "Utilisation", "Verwendung", "Gebruik", "Uso"),
    "tpl.use.text": _t(
        "Type {codes} in any field where the value is missing, as the reason is; never leave a required "
        "field blank and never type 0 or a dash for a missing value.",
        "Digitare {codes} in qualsiasi campo in cui il valore manca, secondo il motivo; non lasciare mai "
        "vuoto un campo obbligatorio e non digitare mai 0 o un trattino per un valore mancante.",
        "Saisissez {codes} dans tout champ dont la valeur manque, selon la raison ; ne laissez jamais un "
        "champ obligatoire vide et ne saisissez jamais 0 ou un tiret pour une valeur manquante.",
        "Geben Sie {codes} in jedes Feld ein, dessen Wert fehlt, je nach Grund; lassen Sie nie ein "
        "Pflichtfeld leer und geben Sie für einen fehlenden Wert nie 0 oder einen Strich ein.",
        "Typ {codes} in elk veld waarvan de waarde ontbreekt, naargelang de reden; laat een verplicht veld "
        "nooit leeg en typ nooit 0 of een streepje voor een ontbrekende waarde.",
        "Escriba {codes} en cualquier campo cuyo valor falte, según el motivo; nunca deje en blanco un "
        "campo obligatorio ni escriba 0 o un guion para un valor ausente."),
    "tpl.h.dates": _t("Dates", "Date", "Dates", "Datumsangaben", "Datums", "Fechas"),
    "tpl.full_dates": _t("Full dates", "Date complete", "Dates complètes", "Vollständige Daten",
                         "Volledige datums", "Fechas completas"),
    "tpl.full_dates.text": _t(
        "Type dates as real Excel dates (shown as YYYY-MM-DD) or as text in ISO form YYYY-MM-DD, "
        "e.g. 2024-03-05.",
        "Digitare le date come vere date di Excel (visualizzate come YYYY-MM-DD) oppure come testo nel "
        "formato ISO YYYY-MM-DD, ad es. 2024-03-05.",
        "Saisissez les dates comme de vraies dates Excel (affichées YYYY-MM-DD) ou comme texte au format "
        "ISO YYYY-MM-DD, p. ex. 2024-03-05.",
        "Geben Sie Daten als echte Excel-Daten ein (angezeigt als YYYY-MM-DD) oder als Text im ISO-Format "
        "YYYY-MM-DD, z. B. 2024-03-05.",
        "Typ datums als echte Excel-datums (weergegeven als YYYY-MM-DD) of als tekst in ISO-vorm "
        "YYYY-MM-DD, bijv. 2024-03-05.",
        "Escriba las fechas como fechas reales de Excel (se muestran como YYYY-MM-DD) o como texto en "
        "formato ISO YYYY-MM-DD, p. ej., 2024-03-05."),
    "tpl.your_site": _t("Your site", "Il vostro centro", "Votre centre", "Ihr Zentrum", "Uw centrum",
                        "Su centro"),
    "tpl.your_site.text": _t(
        "Site {site} types dates as {pattern} when typed as text, e.g. {example}; ISO YYYY-MM-DD is always "
        "accepted.",
        "Il centro {site} scrive le date come {pattern} quando sono digitate come testo, ad es. {example}; "
        "il formato ISO YYYY-MM-DD è sempre accettato.",
        "Le centre {site} saisit les dates sous la forme {pattern} lorsqu'elles sont tapées comme texte, "
        "p. ex. {example} ; le format ISO YYYY-MM-DD est toujours accepté.",
        "Zentrum {site} schreibt Daten als Text in der Form {pattern}, z. B. {example}; ISO YYYY-MM-DD wird "
        "immer akzeptiert.",
        "Centrum {site} typt datums als tekst in de vorm {pattern}, bijv. {example}; ISO YYYY-MM-DD wordt "
        "altijd geaccepteerd.",
        "El centro {site} escribe las fechas como texto con el formato {pattern}, p. ej., {example}; el "
        "formato ISO YYYY-MM-DD se acepta siempre."),
    "tpl.partial_dates": _t("Partial dates", "Date parziali", "Dates partielles", "Unvollständige Daten",
                            "Onvolledige datums", "Fechas parciales"),
    "tpl.partial_dates.text": _t(
        "Partial-date columns are text: type YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2019, 2019-04, 2019-04-17) "
        "as the hint allows; never invent a missing day or month.",
        "Le colonne con data parziale sono testo: digitare YYYY, YYYY-MM o YYYY-MM-DD (ad es. 2019, "
        "2019-04, 2019-04-17) come indicato dal suggerimento; non inventare mai un giorno o un mese "
        "mancante.",
        "Les colonnes de date partielle sont du texte : saisissez YYYY, YYYY-MM ou YYYY-MM-DD (p. ex. 2019, "
        "2019-04, 2019-04-17) comme l'aide l'autorise ; n'inventez jamais un jour ou un mois manquant.",
        "Spalten mit unvollständigem Datum sind Text: Geben Sie YYYY, YYYY-MM oder YYYY-MM-DD ein (z. B. "
        "2019, 2019-04, 2019-04-17), wie der Hinweis es erlaubt; erfinden Sie nie einen fehlenden Tag "
        "oder Monat.",
        "Kolommen met een onvolledige datum zijn tekst: typ YYYY, YYYY-MM of YYYY-MM-DD (bijv. 2019, "
        "2019-04, 2019-04-17) zoals de hulptekst toestaat; verzin nooit een ontbrekende dag of maand.",
        "Las columnas de fecha parcial son texto: escriba YYYY, YYYY-MM o YYYY-MM-DD (p. ej., 2019, "
        "2019-04, 2019-04-17) según permita la ayuda; nunca invente un día o un mes que falte."),
    "tpl.h.numbers": _t("Numbers and units", "Numeri e unità", "Nombres et unités", "Zahlen und Einheiten",
                        "Getallen en eenheden", "Números y unidades"),
    "tpl.decimal": _t("Decimal mark", "Separatore decimale", "Séparateur décimal", "Dezimaltrennzeichen",
                      "Decimaalteken", "Separador decimal"),
    "tpl.decimal.site": _t(
        "Decimal mark of site {site}: {mark}; numbers typed as numbers in Excel are always fine.",
        "Separatore decimale del centro {site}: {mark}; i numeri digitati come numeri in Excel vanno "
        "sempre bene.",
        "Séparateur décimal du centre {site} : {mark} ; les nombres saisis comme nombres dans Excel sont "
        "toujours acceptés.",
        "Dezimaltrennzeichen von Zentrum {site}: {mark}; in Excel als Zahl eingegebene Zahlen sind immer "
        "in Ordnung.",
        "Decimaalteken van centrum {site}: {mark}; getallen die in Excel als getal zijn getypt, zijn altijd "
        "goed.",
        "Separador decimal del centro {site}: {mark}; los números escritos como números en Excel son "
        "siempre válidos."),
    "tpl.decimal.generic": _t(
        "Type numbers as numbers; your Excel's decimal mark (comma or point) is fine. Numbers typed as text "
        "are read with your site's decimal mark.",
        "Digitare i numeri come numeri; il separatore decimale del vostro Excel (virgola o punto) va bene. "
        "I numeri digitati come testo vengono letti con il separatore decimale del vostro centro.",
        "Saisissez les nombres comme des nombres ; le séparateur décimal de votre Excel (virgule ou point) "
        "convient. Les nombres saisis comme texte sont lus avec le séparateur décimal de votre centre.",
        "Geben Sie Zahlen als Zahlen ein; das Dezimaltrennzeichen Ihres Excel (Komma oder Punkt) ist in "
        "Ordnung. Als Text eingegebene Zahlen werden mit dem Dezimaltrennzeichen Ihres Zentrums gelesen.",
        "Typ getallen als getallen; het decimaalteken van uw Excel (komma of punt) is goed. Getallen die "
        "als tekst zijn getypt, worden gelezen met het decimaalteken van uw centrum.",
        "Escriba los números como números; el separador decimal de su Excel (coma o punto) es válido. Los "
        "números escritos como texto se leen con el separador decimal de su centro."),
    "tpl.comma": _t("comma (12,5)", "virgola (12,5)", "virgule (12,5)", "Komma (12,5)", "komma (12,5)",
                    "coma (12,5)"),
    "tpl.point": _t("point (12.5)", "punto (12.5)", "point (12.5)", "Punkt (12.5)", "punt (12.5)",
                    "punto (12.5)"),
    "tpl.comma_word": _t("comma", "virgola", "virgule", "Komma", "komma", "coma"),
    "tpl.point_word": _t("point", "punto", "point", "Punkt", "punt", "punto"),
    "tpl.or": _t("or", "o", "ou", "oder", "of", "o"),
    "tpl.units": _t("Units", "Unità", "Unités", "Einheiten", "Eenheden", "Unidades"),
    "tpl.units.site": _t("Units of site {site}: {units}.", "Unità del centro {site}: {units}.",
                         "Unités du centre {site} : {units}.", "Einheiten von Zentrum {site}: {units}.",
                         "Eenheden van centrum {site}: {units}.", "Unidades del centro {site}: {units}."),
    "tpl.units.say": _t(
        "Say which unit you used in the unit column next to the value{example}.",
        "Indicare l'unità usata nella colonna dell'unità accanto al valore{example}.",
        "Indiquez l'unité utilisée dans la colonne d'unité à côté de la valeur{example}.",
        "Geben Sie die verwendete Einheit in der Einheitenspalte neben dem Wert an{example}.",
        "Vermeld de gebruikte eenheid in de eenheidskolom naast de waarde{example}.",
        "Indique la unidad utilizada en la columna de unidad junto al valor{example}."),
    "tpl.units.example": _t(" (e.g. {vars})", " (ad es. {vars})", " (p. ex. {vars})", " (z. B. {vars})",
                            " (bijv. {vars})", " (p. ej., {vars})"),
    "tpl.units.all": _t("Units each site may use: {list}.", "Unità che ogni centro può usare: {list}.",
                        "Unités que chaque centre peut utiliser : {list}.",
                        "Einheiten, die jedes Zentrum verwenden darf: {list}.",
                        "Eenheden die elk centrum mag gebruiken: {list}.",
                        "Unidades que puede usar cada centro: {list}."),
    "tpl.h.conventions": _t(
        "Site conventions (dates and numbers typed as text)",
        "Convenzioni dei centri (date e numeri digitati come testo)",
        "Conventions des centres (dates et nombres saisis comme texte)",
        "Konventionen der Zentren (als Text eingegebene Daten und Zahlen)",
        "Conventies van de centra (datums en getallen als tekst getypt)",
        "Convenciones de los centros (fechas y números escritos como texto)"),
    "tpl.convention": _t(
        "{city} ({country}): dates {pattern}, decimal {mark}, units {units}",
        "{city} ({country}): date {pattern}, decimali {mark}, unità {units}",
        "{city} ({country}) : dates {pattern}, décimales {mark}, unités {units}",
        "{city} ({country}): Datum {pattern}, Dezimalzeichen {mark}, Einheiten {units}",
        "{city} ({country}): datums {pattern}, decimaal {mark}, eenheden {units}",
        "{city} ({country}): fechas {pattern}, decimales {mark}, unidades {units}"),
    "tpl.h.contact": _t("Contact", "Contatti", "Contact", "Kontakt", "Contact", "Contacto"),
    "tpl.stamp": _t("Version stamp", "Timbro di versione", "Cachet de version", "Versionsstempel",
                    "Versiestempel", "Sello de versión"),
    "tpl.stamp.text": _t(
        "{stamp} (do not edit; it tells the importer which version of the forms this workbook follows)",
        "{stamp} (non modificare; indica al programma di importazione quale versione delle schede segue "
        "questa cartella di lavoro)",
        "{stamp} (ne pas modifier ; il indique à l'importation quelle version des formulaires ce classeur "
        "suit)",
        "{stamp} (nicht ändern; er sagt dem Import, welcher Version der Formulare diese Arbeitsmappe folgt)",
        "{stamp} (niet wijzigen; hiermee weet de import welke versie van de formulieren deze werkmap volgt)",
        "{stamp} (no lo modifique; indica a la importación qué versión de los formularios sigue este "
        "libro)"),
    "tpl.h.forms": _t("Forms", "Schede", "Formulaires", "Formulare", "Formulieren", "Formularios"),
    "tpl.t.sheet": _t("Sheet (form)", "Foglio (scheda)", "Feuille (formulaire)", "Blatt (Formular)",
                      "Blad (formulier)", "Hoja (formulario)"),
    "tpl.t.label": _t("Label", "Etichetta", "Libellé", "Bezeichnung", "Label", "Etiqueta"),
    "tpl.t.record": _t("One record is", "Un record è", "Un enregistrement est", "Ein Datensatz ist",
                       "Eén record is", "Un registro es"),
    "tpl.t.columns": _t("Columns", "Colonne", "Colonnes", "Spalten", "Kolommen", "Columnas"),
    # -- upload template: the hint row under each variable ------------------------------------------
    "hint.required": _t("required", "obbligatorio", "obligatoire", "Pflichtfeld", "verplicht", "obligatorio"),
    "hint.conditional": _t("conditional (see note)", "condizionale (vedi nota)", "conditionnel (voir la note)",
                           "bedingt (siehe Notiz)", "voorwaardelijk (zie notitie)", "condicional (ver nota)"),
    "hint.text": _t("text", "testo", "texte", "Text", "tekst", "texto"),
    "hint.int": _t("whole number", "numero intero", "nombre entier", "ganze Zahl", "geheel getal",
                   "número entero"),
    "hint.num": _t("number", "numero", "nombre", "Zahl", "getal", "número"),
    "hint.date": _t("date YYYY-MM-DD", "data YYYY-MM-DD", "date YYYY-MM-DD", "Datum YYYY-MM-DD",
                    "datum YYYY-MM-DD", "fecha YYYY-MM-DD"),
    "hint.pdate": _t("partial date: {formats}", "data parziale: {formats}", "date partielle : {formats}",
                     "unvollständiges Datum: {formats}", "onvolledige datum: {formats}",
                     "fecha parcial: {formats}"),
    "hint.list": _t("list: {n} codes", "elenco: {n} codici", "liste : {n} codes", "Liste: {n} Codes",
                    "lijst: {n} codes", "lista: {n} códigos"),
    "hint.decimals": _t("max. {n} decimal(s)", "max. {n} decimali", "max. {n} décimale(s)",
                        "max. {n} Dezimalstelle(n)", "max. {n} decimalen", "máx. {n} decimal(es)"),
    "hint.siteid_blank": _t("blank = site {site}", "vuoto = centro {site}", "vide = centre {site}",
                            "leer = Zentrum {site}", "leeg = centrum {site}", "vacío = centro {site}"),
    # -- upload template: the note on each variable code and the validation messages ---------------
    "note.type": _t("Type", "Tipo", "Type", "Typ", "Type", "Tipo"),
    "note.unit": _t("Unit", "Unità", "Unité", "Einheit", "Eenheid", "Unidad"),
    "note.unit_var": _t("(or as stated in {var})", "(o come indicato in {var})", "(ou comme indiqué dans {var})",
                        "(oder wie in {var} angegeben)", "(of zoals vermeld in {var})",
                        "(o según se indique en {var})"),
    "note.rules": _t("Rules", "Regole", "Règles", "Regeln", "Regels", "Reglas"),
    "note.codes": _t("Codes", "Codici", "Codes", "Codes", "Codes", "Códigos"),
    "note.missing": _t("Missing", "Mancante", "Manquant", "Fehlend", "Ontbrekend", "Ausente"),
    "dv.list": _t("Choose a code from the list", "Scegliere un codice dall'elenco",
                  "Choisissez un code dans la liste", "Wählen Sie einen Code aus der Liste",
                  "Kies een code uit de lijst", "Elija un código de la lista"),
    "dv.prompt": _t("{what}. If missing, type {missing}.", "{what}. Se manca, digitare {missing}.",
                    "{what}. Si la valeur manque, saisissez {missing}.", "{what}. Falls fehlend, {missing} eingeben.",
                    "{what}. Ontbreekt de waarde, typ dan {missing}.", "{what}. Si falta, escriba {missing}."),
    "dv.error": _t("Expected: {what}. Keep the value only if it is {missing}.",
                   "Atteso: {what}. Mantenere il valore solo se è {missing}.",
                   "Attendu : {what}. Gardez la valeur seulement si c'est {missing}.",
                   "Erwartet: {what}. Behalten Sie den Wert nur, wenn er {missing} ist.",
                   "Verwacht: {what}. Behoud de waarde alleen als het {missing} is.",
                   "Se espera: {what}. Mantenga el valor solo si es {missing}."),
    "dv.error_title": _t("{var}: check the value", "{var}: verificare il valore", "{var} : vérifiez la valeur",
                         "{var}: Wert prüfen", "{var}: controleer de waarde", "{var}: compruebe el valor"),
    # -- query workbook ---------------------------------------------------------------------------
    "qb.title.site": _t("Queries for site {site} — {study}", "Query del centro {site} — {study}",
                        "Demandes de clarification du centre {site} — {study}",
                        "Rückfragen an Zentrum {site} — {study}", "Vragen aan centrum {site} — {study}",
                        "Consultas del centro {site} — {study}"),
    "qb.title.all": _t("Queries — {study}", "Query — {study}", "Demandes de clarification — {study}",
                       "Rückfragen — {study}", "Vragen — {study}", "Consultas — {study}"),
    "qb.c.QUERY_ID": _t("Query", "Query", "Demande", "Rückfrage", "Vraag", "Consulta"),
    "qb.c.SITE": _t("Site", "Centro", "Centre", "Zentrum", "Centrum", "Centro"),
    "qb.c.SUBJECT": _t("Subject", "Soggetto", "Sujet", "Teilnehmer", "Deelnemer", "Participante"),
    "qb.c.FORM": _t("Form", "Scheda", "Formulaire", "Formular", "Formulier", "Formulario"),
    "qb.c.VISIT": _t("Visit", "Visita", "Visite", "Visite", "Bezoek", "Visita"),
    "qb.c.VARIABLE": _t("Variable", "Variabile", "Variable", "Variable", "Variabele", "Variable"),
    "qb.c.VALUE": _t("Value", "Valore", "Valeur", "Wert", "Waarde", "Valor"),
    "qb.c.MESSAGE": _t("What to check", "Cosa verificare", "À vérifier", "Zu prüfen", "Te controleren",
                       "Qué comprobar"),
    "qb.c.SEVERITY": _t("Level", "Livello", "Niveau", "Stufe", "Niveau", "Nivel"),
    "qb.c.CATEGORY": _t("Category", "Categoria", "Catégorie", "Kategorie", "Categorie", "Categoría"),
    "qb.c.CODE": _t("Check", "Controllo", "Contrôle", "Prüfung", "Controle", "Control"),
    "qb.c.REFERENCE": _t("Protocol reference", "Riferimento al protocollo", "Référence au protocole",
                         "Protokollbezug", "Protocolverwijzing", "Referencia del protocolo"),
    "qb.c.DEVIATION_CLASS": _t("Deviation class", "Classe di deviazione", "Classe de déviation",
                               "Abweichungsklasse", "Deviatieklasse", "Clase de desviación"),
    "qb.c.FILE": _t("File", "File", "Fichier", "Datei", "Bestand", "Archivo"),
    "qb.c.SHEET": _t("Sheet", "Foglio", "Feuille", "Blatt", "Blad", "Hoja"),
    "qb.c.ROW": _t("Row", "Riga", "Ligne", "Zeile", "Rij", "Fila"),
    "qb.c.SITE_RESPONSE": _t("Site's answer", "Risposta del centro", "Réponse du centre", "Antwort des Zentrums",
                             "Antwoord van het centrum", "Respuesta del centro"),
    "qb.c.SITE_COMMENT": _t("Comment", "Commento", "Commentaire", "Kommentar", "Opmerking", "Comentario"),
    "qb.c.RESPONDED_BY": _t("Answered by", "Risposto da", "Répondu par", "Beantwortet von", "Beantwoord door",
                            "Respondido por"),
    "qb.c.RESPONSE_DATE": _t("Date of answer", "Data della risposta", "Date de la réponse", "Datum der Antwort",
                             "Datum van antwoord", "Fecha de respuesta"),
    "qb.c.DM_ACTION": _t("Data manager: action", "Data manager: azione", "Data manager : action",
                         "Datenmanager: Aktion", "Datamanager: actie", "Gestor de datos: acción"),
    "qb.c.DM_REASON": _t("Data manager: reason", "Data manager: motivo", "Data manager : motif",
                         "Datenmanager: Begründung", "Datamanager: reden", "Gestor de datos: motivo"),
    "qb.s.workbook": _t("Query workbook", "Cartella delle query", "Classeur des demandes de clarification",
                        "Arbeitsmappe der Rückfragen", "Werkmap met vragen", "Libro de consultas"),
    "qb.s.study": _t("Study", "Studio", "Étude", "Studie", "Studie", "Estudio"),
    "qb.s.protocol_version": _t("Protocol version", "Versione del protocollo", "Version du protocole",
                                "Protokollversion", "Protocolversie", "Versión del protocolo"),
    "qb.s.schema_hash": _t("Schema hash", "Hash dello schema", "Empreinte du schéma", "Schema-Hash",
                           "Schemahash", "Hash del esquema"),
    "qb.s.site": _t("Site", "Centro", "Centre", "Zentrum", "Centrum", "Centro"),
    "qb.s.data_cut": _t("Data cut", "Data di cut-off", "Date de gel des données", "Datenstichtag",
                        "Peildatum van de gegevens", "Fecha de corte"),
    "qb.s.generated": _t("Generated", "Generato il", "Généré le", "Erstellt am", "Gemaakt op", "Generado el"),
    "qb.s.queries": _t("Queries", "Query", "Demandes", "Rückfragen", "Vragen", "Consultas"),
    "qb.s.left_out": _t("Left out (--max-findings)", "Omesse (--max-findings)", "Omises (--max-findings)",
                        "Ausgelassen (--max-findings)", "Weggelaten (--max-findings)",
                        "Omitidas (--max-findings)"),
    "qb.s.contact": _t("Contact", "Contatti", "Contact", "Kontakt", "Contact", "Contacto"),
    "qb.s.how": _t("How to answer", "Come rispondere", "Comment répondre", "So antworten Sie", "Zo antwoordt u",
                   "Cómo responder"),
    "qb.s.how.text": _t(
        "Answer each query on the Queries sheet: choose an answer in {response} (corrected in a new upload, "
        "confirmed as is, other), explain in {comment}, and fill in {by} and {date}. Do not change the "
        "other columns.",
        "Rispondere a ogni query nel foglio Queries: scegliere una risposta in {response} (corrected in a "
        "new upload = corretto in un nuovo caricamento; confirmed as is = confermato così com'è; other = "
        "altro), spiegare in {comment} e compilare {by} e {date}. Non modificare le altre colonne.",
        "Répondez à chaque demande dans la feuille Queries : choisissez une réponse dans {response} "
        "(corrected in a new upload = corrigé dans un nouvel envoi ; confirmed as is = confirmé tel quel ; "
        "other = autre), expliquez dans {comment} et remplissez {by} et {date}. Ne modifiez pas les autres "
        "colonnes.",
        "Beantworten Sie jede Rückfrage im Blatt Queries: Wählen Sie eine Antwort in {response} (corrected "
        "in a new upload = in einem neuen Upload korrigiert; confirmed as is = so bestätigt; other = "
        "anderes), erläutern Sie sie in {comment} und füllen Sie {by} und {date} aus. Ändern Sie die "
        "anderen Spalten nicht.",
        "Beantwoord elke vraag op het blad Queries: kies een antwoord in {response} (corrected in a new "
        "upload = gecorrigeerd in een nieuwe upload; confirmed as is = bevestigd zoals het is; other = "
        "anders), licht het toe in {comment} en vul {by} en {date} in. Wijzig de andere kolommen niet.",
        "Responda a cada consulta en la hoja Queries: elija una respuesta en {response} (corrected in a new "
        "upload = corregido en una nueva carga; confirmed as is = confirmado tal cual; other = otro), "
        "explíquela en {comment} y rellene {by} y {date}. No modifique las demás columnas."),
    "qb.s.not_available": _t("not available", "non disponibile", "non disponible", "nicht verfügbar",
                             "niet beschikbaar", "no disponible"),
    "qb.s.all_sites": _t("all sites", "tutti i centri", "tous les centres", "alle Zentren", "alle centra",
                         "todos los centros"),
    "qb.s.severity": _t("Level", "Livello", "Niveau", "Stufe", "Niveau", "Nivel"),
    "qb.s.category": _t("Category", "Categoria", "Catégorie", "Kategorie", "Categorie", "Categoría"),
    "qb.s.form": _t("Form", "Scheda", "Formulaire", "Formular", "Formulier", "Formulario"),
    "qb.s.count": _t("count", "numero", "nombre", "Anzahl", "aantal", "número"),
    "qb.s.not_run": _t("Checks that did not run", "Controlli non eseguiti", "Contrôles non exécutés",
                       "Nicht ausgeführte Prüfungen", "Niet uitgevoerde controles", "Controles no ejecutados"),
    "qb.s.status": _t("status", "stato", "statut", "Status", "status", "estado"),
    "qb.s.reason": _t("reason", "motivo", "motif", "Grund", "reden", "motivo"),
    "qb.dv.response": _t(
        "Choose: corrected in a new upload, confirmed as is, or other (explain in {comment}).",
        "Scegliere: corrected in a new upload (corretto in un nuovo caricamento), confirmed as is "
        "(confermato così com'è) oppure other (altro; spiegare in {comment}).",
        "Choisissez : corrected in a new upload (corrigé dans un nouvel envoi), confirmed as is (confirmé "
        "tel quel) ou other (autre ; expliquez dans {comment}).",
        "Wählen Sie: corrected in a new upload (in einem neuen Upload korrigiert), confirmed as is (so "
        "bestätigt) oder other (anderes; in {comment} erläutern).",
        "Kies: corrected in a new upload (gecorrigeerd in een nieuwe upload), confirmed as is (bevestigd "
        "zoals het is) of other (anders; licht toe in {comment}).",
        "Elija: corrected in a new upload (corregido en una nueva carga), confirmed as is (confirmado tal "
        "cual) u other (otro; explíquelo en {comment})."),
    "qb.dv.date": _t("A date, YYYY-MM-DD.", "Una data, YYYY-MM-DD.", "Une date, YYYY-MM-DD.",
                     "Ein Datum, YYYY-MM-DD.", "Een datum, YYYY-MM-DD.", "Una fecha, YYYY-MM-DD."),
    "qb.dv.action": _t(
        "Data manager only: close or reopen, with the reason in {reason}.",
        "Solo per il data manager: close (chiudere) o reopen (riaprire), con il motivo in {reason}.",
        "Réservé au data manager : close (clore) ou reopen (rouvrir), avec le motif dans {reason}.",
        "Nur für das Datenmanagement: close (schließen) oder reopen (wieder öffnen), mit Begründung in "
        "{reason}.",
        "Alleen voor de datamanager: close (sluiten) of reopen (heropenen), met de reden in {reason}.",
        "Solo para el gestor de datos: close (cerrar) o reopen (reabrir), con el motivo en {reason}."),
}


def language_of(value: str | None) -> str:
    """``value`` when it is a language of :data:`LANGUAGES`, else English."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, language: str | None = None, **values: Any) -> str:
    """The catalogue text ``key`` in ``language`` (English when missing there), formatted with ``values``.

    Raises ``KeyError`` for a key the catalogue does not hold (a programming error, not user input).
    """
    entry = CATALOGUE[key]
    template = entry.get(language_of(language)) or entry[DEFAULT_LANGUAGE]
    return template.format(**values) if values else template


def all_texts(key: str, **values: Any) -> set[str]:
    """The text ``key`` in every language (formatted with ``values``): what an importer may meet."""
    return {template.format(**values) if values else template for template in CATALOGUE[key].values()}
