/** @type {{ [word: string]: string }} */
export const dictionary = {
  "'bout": "B AW1 T",
  "a": "AH0",
  "a(2)": "EY1",
  "aalborg": "AO1 L B AO0 R G # place, danish",
  "aalborg(3)": "AO1 L B AO2 R G",
  "aalborg(2)": "AA1 L B AO0 R G",
  "quote\"d": "K W OW1 T IH0 D"
}
